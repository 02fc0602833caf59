package stack

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// pushProxy sits between a push subscription and its function. By default it passes each push through;
// with copies > 1 it delivers every push again (copies-1 more times) a little later, out of order with
// the pushes that follow, as Pub/Sub's at-least-once delivery may.
type pushProxy struct {
	target atomic.Value // string: the function URL, set once before any push
	copies *atomic.Int32
	srv    *http.Server
	client *http.Client
	url    string
	Extra  atomic.Int64 // duplicate pushes sent
	// Pushes counts the pushes Pub/Sub sent (redeliveries included, the proxy's own copies not);
	// Refused those the function did not acknowledge (non-2xx: Pub/Sub pushes them again).
	Pushes, Refused atomic.Int64
	// InFlight counts pushes (and copies) being forwarded now.
	InFlight atomic.Int64
	// intercept, when set, may answer a push itself (a lost hand-off); it is set before any push.
	intercept func(w http.ResponseWriter, body []byte) bool
}

func startPushProxy(target string, copies *atomic.Int32) (*pushProxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &pushProxy{copies: copies, client: &http.Client{Timeout: 10 * time.Minute}, url: "http://" + lis.Addr().String()}
	p.target.Store(target)
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(lis)
	return p, nil
}

func (p *pushProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.Pushes.Add(1)
	if p.intercept != nil && p.intercept(w, body) {
		return
	}
	status := p.forward(r, body)
	if status < 200 || status > 299 {
		p.Refused.Add(1)
	}
	for i := int32(1); i < p.copies.Load(); i++ {
		p.Extra.Add(1)
		go func() {
			time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
			p.forward(r, body)
		}()
	}
	w.WriteHeader(status)
}

func (p *pushProxy) forward(r *http.Request, body []byte) int {
	p.InFlight.Add(1)
	defer p.InFlight.Add(-1)
	req, err := http.NewRequest(r.Method, p.target.Load().(string)+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return http.StatusBadGateway
	}
	req.Header = r.Header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		return http.StatusBadGateway
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (p *pushProxy) Close() { p.srv.Close() }
