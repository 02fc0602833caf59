package main

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// firestoreCounter is a transparent gRPC proxy in front of the Firestore emulator that counts what
// Firestore bills: document reads (every document a Get, BatchGet, query or list returns; 1 for a query
// or aggregation that returns nothing), writes (every update, set or transform in a Commit or
// BatchWrite; a write with transforms counts once) and deletes. The emulator itself counts nothing.
// The functions reach it through FIRESTORE_EMULATOR_HOST; the benchmark's own client does not.
type firestoreCounter struct {
	lis      net.Listener
	srv      *grpc.Server
	mu       sync.Mutex
	upstream *grpc.ClientConn

	reads, writes, deletes atomic.Int64
	calls                  sync.Map // method -> *atomic.Int64
}

type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func startFirestoreCounter() (*firestoreCounter, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c := &firestoreCounter{lis: lis}
	c.srv = grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(c.handle))
	go c.srv.Serve(lis)
	return c, nil
}

// Addr is the host:port for FIRESTORE_EMULATOR_HOST.
func (c *firestoreCounter) Addr() string { return c.lis.Addr().String() }

// SetUpstream points the proxy at the emulator (known only once the stack has started it).
func (c *firestoreCounter) SetUpstream(host string) error {
	conn, err := grpc.NewClient(host, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.upstream = conn
	c.mu.Unlock()
	return nil
}

func (c *firestoreCounter) Close() {
	c.srv.Stop()
	c.mu.Lock()
	if c.upstream != nil {
		c.upstream.Close()
	}
	c.mu.Unlock()
}

// Counts is a snapshot.
type fsCounts struct {
	Reads   int64            `json:"reads"`
	Writes  int64            `json:"writes"`
	Deletes int64            `json:"deletes"`
	Calls   map[string]int64 `json:"calls"`
}

func (c *firestoreCounter) Counts() fsCounts {
	out := fsCounts{Reads: c.reads.Load(), Writes: c.writes.Load(), Deletes: c.deletes.Load(), Calls: map[string]int64{}}
	c.calls.Range(func(k, v any) bool {
		out.Calls[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

func (c *firestoreCounter) handle(_ any, ss grpc.ServerStream) error {
	method, ok := grpc.MethodFromServerStream(ss)
	if !ok {
		return errors.New("no method")
	}
	short := method[strings.LastIndex(method, "/")+1:]
	n, _ := c.calls.LoadOrStore(short, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	c.mu.Lock()
	up := c.upstream
	c.mu.Unlock()
	if up == nil {
		return errors.New("firestore counter: no upstream yet")
	}
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		ctx = metadata.NewOutgoingContext(ctx, md.Copy())
	}
	cs, err := up.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	// Client to emulator.
	sendErr := make(chan error, 1)
	go func() {
		for {
			var b []byte
			if err := ss.RecvMsg(&b); err != nil {
				if err == io.EOF {
					sendErr <- cs.CloseSend()
					return
				}
				sendErr <- err
				return
			}
			c.countRequest(short, b)
			if err := cs.SendMsg(&b); err != nil {
				sendErr <- nil // the receive side reports the status
				return
			}
		}
	}()
	// Emulator to client.
	if md, err := cs.Header(); err == nil {
		_ = ss.SendHeader(md)
	}
	docs := 0
	for {
		var b []byte
		if err := cs.RecvMsg(&b); err != nil {
			ss.SetTrailer(cs.Trailer())
			if err == io.EOF {
				c.countResponseEnd(short, docs)
				return nil
			}
			if short == "GetDocument" {
				c.reads.Add(1) // a missing document is a billed read too
			}
			return err
		}
		docs += c.countResponse(short, b)
		if err := ss.SendMsg(&b); err != nil {
			return err
		}
	}
}

func (c *firestoreCounter) countRequest(method string, b []byte) {
	var writes []*firestorepb.Write
	switch method {
	case "Commit":
		var r firestorepb.CommitRequest
		if proto.Unmarshal(b, &r) == nil {
			writes = r.Writes
		}
	case "BatchWrite":
		var r firestorepb.BatchWriteRequest
		if proto.Unmarshal(b, &r) == nil {
			writes = r.Writes
		}
	}
	for _, w := range writes {
		if w.GetDelete() != "" {
			c.deletes.Add(1)
		} else {
			c.writes.Add(1)
		}
	}
}

// countResponse counts the documents of one response message and returns how many it held.
func (c *firestoreCounter) countResponse(method string, b []byte) int {
	n := 0
	switch method {
	case "GetDocument":
		n = 1
	case "BatchGetDocuments":
		n = 1 // found or missing: one read each
	case "RunQuery":
		var r firestorepb.RunQueryResponse
		if proto.Unmarshal(b, &r) == nil && r.Document != nil {
			n = 1
		}
	case "RunAggregationQuery":
		n = 1
	case "ListDocuments":
		var r firestorepb.ListDocumentsResponse
		if proto.Unmarshal(b, &r) == nil {
			n = len(r.Documents)
		}
	}
	c.reads.Add(int64(n))
	return n
}

// countResponseEnd bills the minimum read of a query that returned nothing.
func (c *firestoreCounter) countResponseEnd(method string, docs int) {
	if (method == "RunQuery" || method == "ListDocuments") && docs == 0 {
		c.reads.Add(1)
	}
}
