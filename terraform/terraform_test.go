// Package terraform_test keeps the Terraform in this directory and the Go code from drifting apart: the
// functions Terraform deploys are the entry points the code registers, the topics are the code's topic
// defaults, each Pub/Sub-triggered function is pushed the topic docs/design.md names, and every
// environment variable Terraform sets is one shared/config reads (and every one it requires is set).
//
// It reads the .tf files with hclsyntax and the Go code with go/ast; nothing is deployed or planned.
package terraform_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// repoRoot is the module root, one level up from this directory.
const repoRoot = ".."

// localOnly are configuration variables without a default that production leaves unset on purpose.
var localOnly = map[string]string{
	"TASKS_ENDPOINT": "Cloud Tasks stand-in of the local stack",
	"TOKEN_KEYSET":   "cleartext keyset of local stacks; production sets TOKEN_KEY_URI (exactly one of the two)",
}

// secretVars must come from Secret Manager, never from plain environment variables.
var secretVars = []string{"OAUTH_CLIENT_SECRET", "START_LINK_KEY", "WEBHOOK_SECRET"}

// ---- Terraform side ----

type tfFunction struct {
	resource   string // google_cloudfunctions2_function.<resource>
	entryPoint string
	env        map[string]bool // plain environment variable names
	secretEnv  map[string]bool // secret_environment_variables keys
}

type tfModule struct {
	files     map[string]*hcl.File
	locals    map[string]hcl.Expression
	resources map[string]map[string]*hclsyntax.Block // type -> name -> block
}

func loadTerraform(t *testing.T) *tfModule {
	t.Helper()
	paths, err := filepath.Glob("*.tf")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no .tf files in terraform/ (%v)", err)
	}
	m := &tfModule{files: map[string]*hcl.File{}, locals: map[string]hcl.Expression{}, resources: map[string]map[string]*hclsyntax.Block{}}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := hclsyntax.ParseConfig(src, p, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("parse %s: %s", p, diags.Error())
		}
		m.files[p] = f
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			switch b.Type {
			case "locals":
				for name, a := range b.Body.Attributes {
					if _, dup := m.locals[name]; dup {
						t.Fatalf("local %q defined twice", name)
					}
					m.locals[name] = a.Expr
				}
			case "resource":
				if len(b.Labels) != 2 {
					continue
				}
				if m.resources[b.Labels[0]] == nil {
					m.resources[b.Labels[0]] = map[string]*hclsyntax.Block{}
				}
				m.resources[b.Labels[0]][b.Labels[1]] = b
			}
		}
	}
	return m
}

// localValue evaluates local.<name> as far as it is made of literals: object items that refer to anything
// else are left out, so a local mixing literals and references still yields its literal parts.
func (m *tfModule) localValue(t *testing.T, name string) cty.Value {
	t.Helper()
	e, ok := m.locals[name]
	if !ok {
		t.Fatalf("terraform: local.%s is not defined", name)
	}
	return literal(e, m.evalContext(nil))
}

func literal(e hcl.Expression, ctx *hcl.EvalContext) cty.Value {
	if o, ok := e.(*hclsyntax.ObjectConsExpr); ok {
		vals := map[string]cty.Value{}
		for _, item := range o.Items {
			k, diags := item.KeyExpr.Value(ctx)
			if diags.HasErrors() || !k.Type().Equals(cty.String) {
				continue
			}
			v := literal(item.ValueExpr, ctx)
			if v == cty.NilVal {
				continue
			}
			vals[k.AsString()] = v
		}
		return cty.ObjectVal(vals)
	}
	v, diags := e.Value(ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal
	}
	return v
}

// evalContext offers the literal locals (one level deep) and the few functions the names use.
func (m *tfModule) evalContext(each map[string]cty.Value) *hcl.EvalContext {
	toset := function.New(&function.Spec{
		Params: []function.Parameter{{Name: "list", Type: cty.DynamicPseudoType}},
		Type: func(args []cty.Value) (cty.Type, error) {
			return cty.Set(cty.String), nil
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			var vals []cty.Value
			for it := args[0].ElementIterator(); it.Next(); {
				_, v := it.Element()
				vals = append(vals, v)
			}
			return cty.SetVal(vals), nil
		},
	})
	ctx := &hcl.EvalContext{Functions: map[string]function.Function{"toset": toset}, Variables: map[string]cty.Value{}}
	locals := map[string]cty.Value{}
	for name, e := range m.locals {
		if v := literal(e, ctx); v != cty.NilVal {
			locals[name] = v
		}
	}
	ctx.Variables["local"] = cty.ObjectVal(locals)
	if each != nil {
		ctx.Variables["each"] = cty.ObjectVal(each)
	}
	return ctx
}

func stringOf(t *testing.T, v cty.Value, what string) string {
	t.Helper()
	if v == cty.NilVal || !v.Type().Equals(cty.String) {
		t.Fatalf("terraform: %s is not a literal string", what)
	}
	return v.AsString()
}

// names evaluates the name attribute of a resource for each of its for_each keys.
func (m *tfModule) names(t *testing.T, typ, res string) map[string]string {
	t.Helper()
	b := m.block(t, typ, res)
	fe, ok := b.Body.Attributes["for_each"]
	if !ok {
		v, _ := b.Body.Attributes["name"].Expr.Value(m.evalContext(nil))
		return map[string]string{"": stringOf(t, v, typ+"."+res+".name")}
	}
	set, diags := fe.Expr.Value(m.evalContext(nil))
	if diags.HasErrors() {
		t.Fatalf("terraform: for_each of %s.%s: %s", typ, res, diags.Error())
	}
	out := map[string]string{}
	for it := set.ElementIterator(); it.Next(); {
		k, v := it.Element()
		if set.Type().IsSetType() {
			k = v
		}
		ctx := m.evalContext(map[string]cty.Value{"key": k, "value": v})
		n, diags := b.Body.Attributes["name"].Expr.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("terraform: name of %s.%s[%s]: %s", typ, res, k.AsString(), diags.Error())
		}
		out[k.AsString()] = n.AsString()
	}
	return out
}

func (m *tfModule) block(t *testing.T, typ, name string) *hclsyntax.Block {
	t.Helper()
	b, ok := m.resources[typ][name]
	if !ok {
		t.Fatalf("terraform: resource %s.%s is missing", typ, name)
	}
	return b
}

func (m *tfModule) functions(t *testing.T) map[string]tfFunction {
	t.Helper()
	out := map[string]tfFunction{}
	for name, b := range m.resources["google_cloudfunctions2_function"] {
		f := tfFunction{resource: name, env: map[string]bool{}, secretEnv: map[string]bool{}}
		for _, sub := range b.Body.Blocks {
			switch sub.Type {
			case "build_config":
				a, ok := sub.Body.Attributes["entry_point"]
				if !ok {
					t.Fatalf("terraform: function %s has no entry_point", name)
				}
				v, _ := a.Expr.Value(nil)
				f.entryPoint = stringOf(t, v, "entry_point of "+name)
			case "service_config":
				if a, ok := sub.Body.Attributes["environment_variables"]; ok {
					for _, k := range m.objectKeys(t, a.Expr, "environment_variables of "+name) {
						f.env[k] = true
					}
				}
				for _, s := range sub.Body.Blocks {
					if s.Type != "secret_environment_variables" {
						continue
					}
					v, _ := s.Body.Attributes["key"].Expr.Value(m.evalContext(nil))
					f.secretEnv[stringOf(t, v, "secret_environment_variables key of "+name)] = true
				}
			}
		}
		out[name] = f
	}
	return out
}

// objectKeys lists the keys of an object expression, directly or through a local.
func (m *tfModule) objectKeys(t *testing.T, e hcl.Expression, what string) []string {
	t.Helper()
	if st, ok := e.(*hclsyntax.ScopeTraversalExpr); ok && len(st.Traversal) == 2 && st.Traversal.RootName() == "local" {
		e = m.locals[st.Traversal[1].(hcl.TraverseAttr).Name]
	}
	o, ok := e.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("terraform: %s must be an object literal or a local holding one", what)
	}
	var keys []string
	for _, item := range o.Items {
		k, diags := item.KeyExpr.Value(nil)
		if diags.HasErrors() {
			t.Fatalf("terraform: %s has a computed key", what)
		}
		keys = append(keys, k.AsString())
	}
	return keys
}

// ---- Go side ----

// goEntryPoints finds functions.HTTP("Name", ...) and functions.CloudEvent("Name", ...) in functions/*/.
func goEntryPoints(t *testing.T) map[string]string {
	t.Helper()
	const ff = "github.com/GoogleCloudPlatform/functions-framework-go/functions"
	paths, _ := filepath.Glob(filepath.Join(repoRoot, "functions", "*", "*.go"))
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", p, err)
		}
		alias := ""
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == ff {
				alias = "functions"
				if imp.Name != nil {
					alias = imp.Name.Name
				}
			}
		}
		if alias == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != alias || (sel.Sel.Name != "HTTP" && sel.Sel.Name != "CloudEvent") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: %s.%s with a non-literal name: this test cannot follow it", fset.Position(call.Pos()), alias, sel.Sel.Name)
				return true
			}
			name, _ := strconv.Unquote(lit.Value)
			if prev, dup := out[name]; dup {
				t.Errorf("entry point %s registered twice (%s and %s)", name, prev, sel.Sel.Name)
			}
			out[name] = sel.Sel.Name
			return true
		})
	}
	return out
}

type envTag struct {
	name       string
	def        string
	hasDefault bool
}

// configEnv reads the `env:"NAME, default=..."` tags of every struct in shared/config.
func configEnv(t *testing.T) map[string]envTag {
	t.Helper()
	dir := filepath.Join(repoRoot, "shared", "config")
	paths, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	out := map[string]envTag{}
	fset := token.NewFileSet()
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", p, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			field, ok := n.(*ast.Field)
			if !ok || field.Tag == nil {
				return true
			}
			raw, _ := strconv.Unquote(field.Tag.Value)
			tag, ok := reflect.StructTag(raw).Lookup("env")
			if !ok {
				return true
			}
			parts := strings.Split(tag, ",")
			e := envTag{name: strings.TrimSpace(parts[0])}
			for i, opt := range parts[1:] {
				if v, ok := strings.CutPrefix(strings.TrimSpace(opt), "default="); ok {
					// A default may itself hold commas (POLL_LADDER): the rest of the tag is the default.
					e.def = strings.TrimSpace(strings.Join(append([]string{v}, parts[i+2:]...), ","))
					e.hasDefault = true
					break
				}
			}
			if e.name != "" {
				out[e.name] = e
			}
			return true
		})
	}
	return out
}

// ---- docs/design.md ----

type designFunction struct{ entryPoint, kind, topic string }

var (
	designRow   = regexp.MustCompile("^\\|\\s*`functions/[a-z]+`\\s*\\|\\s*`([A-Za-z]+)`\\s*\\|\\s*(HTTP|CloudEvent)\\s*\\|(.*)\\|\\s*$")
	designTopic = regexp.MustCompile("Pub/Sub topic `([a-z0-9-]+)`")
)

func designFunctions(t *testing.T) []designFunction {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "docs", "design.md"))
	if err != nil {
		t.Fatalf("docs/design.md: %v", err)
	}
	var out []designFunction
	for _, line := range strings.Split(string(src), "\n") {
		m := designRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		d := designFunction{entryPoint: m[1], kind: m[2]}
		if tm := designTopic.FindStringSubmatch(m[3]); tm != nil {
			d.topic = tm[1]
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		t.Fatal("docs/design.md: no rows in the functions table (| `functions/x` | `Entry` | kind | trigger |)")
	}
	return out
}

// ---- the checks ----

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// pushTargets maps a topic key (of local.topic_names) to the function resource its push subscription
// calls, read from local.push.<key>.uri = google_cloudfunctions2_function.<fn>.service_config[0].uri.
func (m *tfModule) pushTargets(t *testing.T) map[string]string {
	t.Helper()
	o, ok := m.locals["push"].(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatal("terraform: local.push must be an object literal")
	}
	out := map[string]string{}
	for _, item := range o.Items {
		k, _ := item.KeyExpr.Value(nil)
		for _, tr := range item.ValueExpr.Variables() {
			if tr.RootName() == "google_cloudfunctions2_function" && len(tr) > 1 {
				fn := tr[1].(hcl.TraverseAttr).Name
				if prev, ok := out[k.AsString()]; ok && prev != fn {
					t.Fatalf("terraform: local.push.%s refers to two functions (%s, %s)", k.AsString(), prev, fn)
				}
				out[k.AsString()] = fn
			}
		}
	}
	return out
}

func requireDir(t *testing.T, dir, why string) {
	t.Helper()
	if fi, err := os.Stat(filepath.Join(repoRoot, dir)); err != nil || !fi.IsDir() {
		t.Fatalf("%s does not exist: %s. This test compares terraform/ with it and cannot pass without it.", dir, why)
	}
}

func TestEntryPointsMatchCode(t *testing.T) {
	requireDir(t, "functions", "the function packages register the entry points Terraform deploys")
	tf := loadTerraform(t)
	code := goEntryPoints(t)
	if len(code) == 0 {
		t.Fatal("no functions.HTTP/functions.CloudEvent registrations found under functions/*/")
	}
	pushed := map[string]bool{}
	for _, fn := range tf.pushTargets(t) {
		pushed[fn] = true
	}
	deployed := map[string]bool{}
	for res, f := range tf.functions(t) {
		deployed[f.entryPoint] = true
		kind, ok := code[f.entryPoint]
		switch {
		case !ok:
			t.Errorf("terraform deploys entry point %s (google_cloudfunctions2_function.%s) but no functions/* package registers it", f.entryPoint, res)
		case kind == "CloudEvent" && !pushed[res]:
			t.Errorf("%s is a CloudEvent function but no Pub/Sub push subscription calls google_cloudfunctions2_function.%s", f.entryPoint, res)
		case kind == "HTTP" && pushed[res]:
			t.Errorf("%s is an HTTP function but a Pub/Sub push subscription calls it", f.entryPoint)
		}
	}
	for _, name := range sortedKeys(code) {
		if !deployed[name] {
			t.Errorf("functions/* registers %s (%s) but terraform deploys no function with that entry point", name, code[name])
		}
	}
	for _, d := range designFunctions(t) {
		if kind, ok := code[d.entryPoint]; ok && kind != d.kind {
			t.Errorf("docs/design.md says %s is %s, the code registers it as %s", d.entryPoint, d.kind, kind)
		}
		if !deployed[d.entryPoint] {
			t.Errorf("docs/design.md lists %s, terraform does not deploy it", d.entryPoint)
		}
	}
}

func TestTopicsMatchCodeAndDesign(t *testing.T) {
	requireDir(t, "shared/config", "its TOPIC_* defaults are the topic names")
	tf := loadTerraform(t)
	env := configEnv(t)

	topicNames := tf.localValue(t, "topic_names")
	tfTopics := map[string]string{} // key -> name
	for k, v := range topicNames.AsValueMap() {
		tfTopics[k] = v.AsString()
	}
	// TOPIC_* defaults in shared/config == the topics terraform creates.
	var codeTopics, created []string
	for name, e := range env {
		if strings.HasPrefix(name, "TOPIC_") {
			if !e.hasDefault {
				t.Errorf("shared/config: %s has no default topic name", name)
			}
			codeTopics = append(codeTopics, e.def)
		}
	}
	for _, n := range tfTopics {
		created = append(created, n)
	}
	sort.Strings(codeTopics)
	sort.Strings(created)
	if !slices.Equal(codeTopics, created) {
		t.Errorf("topics: terraform creates %v, shared/config's TOPIC_* defaults are %v", created, codeTopics)
	}
	// The resource creates exactly those names.
	for k, n := range tf.names(t, "google_pubsub_topic", "topic") {
		if tfTopics[k] != n {
			t.Errorf("google_pubsub_topic.topic[%q] is named %q, local.topic_names says %q", k, n, tfTopics[k])
		}
	}
	// Each TOPIC_* variable a function gets names the topic its default names.
	envExpr, ok := tf.locals["env"].(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatal("terraform: local.env must be an object literal")
	}
	for _, item := range envExpr.Items {
		k, _ := item.KeyExpr.Value(nil)
		name := k.AsString()
		if !strings.HasPrefix(name, "TOPIC_") {
			continue
		}
		got := ""
		for _, tr := range item.ValueExpr.Variables() {
			if tr.RootName() == "google_pubsub_topic" && len(tr) > 2 {
				if idx, ok := tr[2].(hcl.TraverseIndex); ok && idx.Key.Type().Equals(cty.String) {
					got = tfTopics[idx.Key.AsString()]
				}
			}
		}
		if got == "" {
			t.Errorf("terraform: %s must be google_pubsub_topic.topic[\"<key>\"].name", name)
		} else if want := env[name].def; got != want {
			t.Errorf("terraform sets %s=%s, shared/config's default is %s", name, got, want)
		}
	}

	// docs/design.md: each Pub/Sub-triggered function is pushed its topic, which has a dead-letter topic
	// with its own subscription.
	functions := tf.functions(t)
	byEntry := map[string]string{}
	for res, f := range functions {
		byEntry[f.entryPoint] = res
	}
	targets := tf.pushTargets(t)
	pushNames := tf.names(t, "google_pubsub_subscription", "push")
	deadTopics := tf.names(t, "google_pubsub_topic", "dead_letter")
	deadSubs := tf.names(t, "google_pubsub_subscription", "dead_letter")
	keyOf := map[string]string{}
	for k, n := range tfTopics {
		keyOf[n] = k
	}
	for _, d := range designFunctions(t) {
		if d.topic == "" {
			continue
		}
		key, ok := keyOf[d.topic]
		if !ok {
			t.Errorf("docs/design.md: %s is triggered by topic %s, terraform creates no such topic", d.entryPoint, d.topic)
			continue
		}
		if got, want := targets[key], byEntry[d.entryPoint]; got == "" || got != want {
			t.Errorf("topic %s must be pushed to %s (google_cloudfunctions2_function.%s), terraform pushes it to %q", d.topic, d.entryPoint, want, got)
		}
		if _, ok := pushNames[key]; !ok {
			t.Errorf("topic %s has no push subscription", d.topic)
		}
		if got, want := deadTopics[key], d.topic+"-dead-letter"; got != want {
			t.Errorf("topic %s: dead-letter topic is %q, want %q", d.topic, got, want)
		}
		if _, ok := deadSubs[key]; !ok {
			t.Errorf("dead-letter topic %s-dead-letter has no subscription", d.topic)
		}
	}
}

func TestEnvironmentMatchesConfig(t *testing.T) {
	requireDir(t, "shared/config", "its env tags name the variables Terraform sets")
	tf := loadTerraform(t)
	env := configEnv(t)
	if len(env) == 0 {
		t.Fatal("shared/config: no `env:\"...\"` struct tags found")
	}
	set := map[string]bool{}
	for res, f := range tf.functions(t) {
		for name := range f.env {
			set[name] = true
			if _, ok := env[name]; !ok {
				t.Errorf("function %s: terraform sets %s, shared/config reads no such variable", res, name)
			}
			if slices.Contains(secretVars, name) {
				t.Errorf("function %s: %s must come from Secret Manager (secret_environment_variables), not a plain variable", res, name)
			}
		}
		for name := range f.secretEnv {
			set[name] = true
			if _, ok := env[name]; !ok {
				t.Errorf("function %s: terraform sets secret %s, shared/config reads no such variable", res, name)
			}
			if f.env[name] {
				t.Errorf("function %s: %s is both a plain and a secret variable", res, name)
			}
		}
	}
	for _, name := range sortedKeys(env) {
		e := env[name]
		if e.hasDefault || set[name] {
			continue
		}
		if why, ok := localOnly[name]; ok {
			t.Logf("%s not set in production: %s", name, why)
			continue
		}
		t.Errorf("shared/config requires %s (no default) but no function gets it from terraform", name)
	}
	for name := range localOnly {
		if set[name] {
			t.Errorf("terraform sets %s, which is for local stacks only", name)
		}
	}
}
