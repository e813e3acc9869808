//! The scrape endpoint: HTTP/1.1 with hyper, `GET /metrics`.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode, body::Bytes, header, server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::render::prometheus::{self, Fleet};

/// Serves scrapes until the runtime ends; each connection is its own task.
pub async fn serve(listener: TcpListener, fleet: Arc<Mutex<Fleet>>) {
    loop {
        // A failed accept (too many open files) must not end the agent.
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let fleet = Arc::clone(&fleet);
        tokio::spawn(async move {
            let service = service_fn(move |request| respond(request, Arc::clone(&fleet)));
            // A scraper that hangs up early is its own business.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond<B>(
    request: Request<B>,
    fleet: Arc<Mutex<Fleet>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = header::HeaderValue::from_str(content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        Ok(response)
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match request.uri().path() {
        "/metrics" => {
            // Copied out, so that encoding does not hold the lock.
            let snapshot = match fleet.lock() {
                Ok(fleet) => fleet.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            };
            reply(
                StatusCode::OK,
                prometheus::CONTENT_TYPE,
                prometheus::exposition(&snapshot),
            )
        }
        "/" => reply(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "leaktrace agent: metrics at /metrics\n".into(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}
