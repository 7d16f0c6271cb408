package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
)

// echoServer: one goroutine per connection copying bytes back.
func echoServer() {
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		panic(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			panic(err)
		}
		go func(c net.Conn) {
			defer c.Close()
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					if err != io.EOF {
						return
					}
					return
				}
			}
		}(conn)
	}
}

// httpServer: net/http "Hello, World!".
func httpServer() {
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		panic(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	hello := []byte("Hello, World!")
	c := newChurn(*churnFactor)
	printPausesOnSignal()
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if c != nil {
			churnSink.Add(c.request())
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write(hello)
	})
	panic(http.Serve(ln, handler))
}
