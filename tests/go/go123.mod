module leaktrace.test/targets

go 1.23
