package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestOneValuePerKey(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	ctx := WithLogger(context.Background(), New(&buf, "INFO"))
	ctx = With(ctx, "user", "u1", "round", "u1~1", "resource", "")
	ctx = With(ctx, "resource", "myactivity.search")
	FromContext(ctx).Info("state changed", "round", "u1~1", "to", "done")
	FromContext(ctx).Debug("hidden")
	line := buf.String()
	if strings.Count(line, `"resource"`) != 1 || strings.Count(line, `"round"`) != 1 || strings.Count(line, "\n") != 1 {
		t.Fatalf("keys repeated or level ignored: %s", line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	if m["resource"] != "myactivity.search" || m["severity"] != "INFO" || m["message"] != "state changed" || m["to"] != "done" {
		t.Errorf("line %v", m)
	}
	buf.Reset()
	FromContext(ctx).WithGroup("g").Warn("grouped", "k", 1)
	if !strings.Contains(buf.String(), `"g":{"k":1}`) || !strings.Contains(buf.String(), `"severity":"WARNING"`) {
		t.Errorf("group line %s", buf.String())
	}
}

// TestSourceLocation: ERROR lines name the code that wrote them (Cloud Logging's sourceLocation), other
// lines do not; a logger's own attributes and the location do not collide.
func TestSourceLocation(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := New(&buf, "DEBUG").With("user", "u1")
	log.Warn("slow")
	_, file, line, _ := runtime.Caller(0)
	log.Error("failed", "error", "boom")
	ls := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(ls) != 2 {
		t.Fatalf("lines %q", ls)
	}
	var warn, failed map[string]any
	if json.Unmarshal([]byte(ls[0]), &warn) != nil || json.Unmarshal([]byte(ls[1]), &failed) != nil {
		t.Fatalf("not JSON: %q", ls)
	}
	if _, ok := warn[KeySourceLocation]; ok {
		t.Errorf("WARNING line with a source location: %v", warn)
	}
	loc, _ := failed[KeySourceLocation].(map[string]any)
	want := map[string]any{"file": file, "line": strconv.Itoa(line + 1), "function": "github.com/portability-pipeline/pipeline/shared/logging.TestSourceLocation"}
	for k, v := range want {
		if loc[k] != v {
			t.Errorf("sourceLocation.%s = %v, want %v", k, loc[k], v)
		}
	}
	if failed["severity"] != "ERROR" || failed["user"] != "u1" || failed["error"] != "boom" {
		t.Errorf("line %v", failed)
	}
}
