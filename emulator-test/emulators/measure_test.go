package emulators_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/portability-pipeline/pipeline/emulator-test/emulators"
)

// TestMeasure prints the figures of README.md: start time, memory at start and after a small workload, and
// stop time of a fresh instance of each emulator. Opt-in: EMULATORS_MEASURE=1 (it takes about a minute).
func TestMeasure(t *testing.T) {
	if os.Getenv("EMULATORS_MEASURE") == "" {
		t.Skip("set EMULATORS_MEASURE=1 to measure the emulators")
	}
	need(t)
	ctx := t.Context()
	kinds := []struct {
		name  string
		start func(context.Context, emulators.Options) (*emulators.Emulator, error)
		work  func(*testing.T, *emulators.Emulator)
	}{
		{"firestore", emulators.StartFirestore, firestoreWork},
		{"pubsub", emulators.StartPubSub, pubsubWork},
		{"fakegcs", emulators.StartFakeGCS, gcsWork},
	}
	for _, k := range kinds {
		for run := 1; run <= 3; run++ {
			e, err := k.start(ctx, emulators.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rss0, _ := e.RSS()
			w0 := time.Now()
			k.work(t, e)
			work := time.Since(w0)
			rss1, _ := e.RSS()
			s0 := time.Now()
			if err := e.Close(); err != nil {
				t.Error(err)
			}
			t.Logf("%-9s run %d: ready in %6v, RSS %4d MB at start, %4d MB after workload (%v), stop %v",
				k.name, run, e.StartupTime().Round(10*time.Millisecond), rss0>>20, rss1>>20,
				work.Round(10*time.Millisecond), time.Since(s0).Round(10*time.Millisecond))
		}
	}
}

// firestoreWork writes and reads 500 small documents.
func firestoreWork(t *testing.T, e *emulators.Emulator) {
	ctx := t.Context()
	t.Setenv(e.EnvName(), e.Host())
	c := client(t, firestore.NewClient)
	defer c.Close()
	for i := range 5 {
		bw := c.BulkWriter(ctx)
		for j := range 100 {
			if _, err := bw.Set(c.Collection("m").Doc(fmt.Sprintf("d%d-%d", i, j)), map[string]any{"i": i, "j": j, "pad": string(make([]byte, 512))}); err != nil {
				t.Fatal(err)
			}
		}
		bw.End()
	}
	docs, err := c.Collection("m").Documents(ctx).GetAll()
	if err != nil || len(docs) != 500 {
		t.Fatalf("read %d docs: %v", len(docs), err)
	}
}

// pubsubWork publishes 1000 messages of 1 KB and pulls them.
func pubsubWork(t *testing.T, e *emulators.Emulator) {
	ctx := t.Context()
	t.Setenv(e.EnvName(), e.Host())
	c := client(t, pubsub.NewClient)
	defer c.Close()
	topic, sub := "projects/"+project+"/topics/measure", "projects/"+project+"/subscriptions/measure"
	if _, err := c.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{Name: sub, Topic: topic}); err != nil {
		t.Fatal(err)
	}
	p := c.Publisher(topic)
	var results []*pubsub.PublishResult
	for range 1000 {
		results = append(results, p.Publish(ctx, &pubsub.Message{Data: bytes.Repeat([]byte("x"), 1024)}))
	}
	for _, r := range results {
		if _, err := r.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	p.Stop()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n := 0
	err := c.Subscriber(sub).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		if n++; n == 1000 {
			cancel()
		}
	})
	if n < 1000 {
		t.Fatalf("received %d of 1000: %v", n, err)
	}
}

// gcsWork uploads five 8 MiB objects in 1 MiB chunks and reads one back.
func gcsWork(t *testing.T, e *emulators.Emulator) {
	ctx := t.Context()
	t.Setenv(e.EnvName(), e.Host())
	c, err := storage.NewClient(ctx, option.WithoutAuthentication(), storage.WithJSONReads())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := c.Bucket("measure")
	if err := b.Create(ctx, project, nil); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16)
	for i := range 5 {
		w := b.Object(fmt.Sprint(i)).NewWriter(ctx)
		w.ChunkSize = 1 << 20
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	r, err := b.Object("0").NewReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}
