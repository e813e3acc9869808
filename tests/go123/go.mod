module leaktrace.test/go123

go 1.23
