// Command fakegcs serves a Cloud Storage stand-in (github.com/fsouza/fake-gcs-server, in memory, plain HTTP)
// on a loopback port until SIGINT or SIGTERM. It runs in its own process because the server is
// memory-hungry (it holds several copies of every object); emulators.StartFakeGCS builds and starts it.
//
// Clients reach it with STORAGE_EMULATOR_HOST=127.0.0.1:PORT. PublicHost is set to the same address, so
// that the storage client's XML reads (GET http://127.0.0.1:PORT/BUCKET/OBJECT) work too.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 0, "port to listen on (required)")
	verbose := flag.Bool("v", false, "log every request")
	flag.Parse()
	if *port <= 0 || *port > 65535 {
		log.Fatal("fakegcs: -port is required")
	}
	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	logs := io.Discard
	if *verbose {
		logs = os.Stderr
	}
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme:      "http",
		Host:        *host,
		Port:        uint16(*port),
		PublicHost:  addr,
		ExternalURL: "http://" + addr,
		Writer:      logs,
	})
	if err != nil {
		log.Fatalf("fakegcs: %v", err)
	}
	fmt.Printf("fakegcs: serving on http://%s\n", addr)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	srv.Stop()
}
