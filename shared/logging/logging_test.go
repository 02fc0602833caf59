package logging

import (
	"bytes"
	"context"
	"encoding/json"
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
