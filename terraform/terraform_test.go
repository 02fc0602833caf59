// Package terraform_test keeps the Terraform in this directory and the Go code from drifting apart: the
// functions Terraform deploys are the entry points of the routing table (pipeline.Routes), the topics
// are the code's topic defaults, each Pub/Sub route is pushed the topic its TOPIC_* variable names, and every
// environment variable Terraform sets is one shared/config reads (and every one it requires is set).
//
// It reads the .tf files with hclsyntax, the routing table as Go and shared/config with go/ast; nothing is
// deployed or planned.
package terraform_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
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
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/portability-pipeline/pipeline"
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

// tfFunction is one deployed function: a google_cloudfunctions2_function of this module, or one in a
// module this module calls (modules/function), with the call's arguments put in for the child's variables.
type tfFunction struct {
	addr       string // google_cloudfunctions2_function.<name>, or module.<call> for a function in a called module
	entryPoint string
	env        map[string]bool // plain environment variable names
	secretEnv  map[string]bool // secret_environment_variables keys
	secrets    []string        // the secret each mount reads, as written (locals expanded)
	sa         string          // the service account it runs as: [module.<call>.]google_service_account.<name>
}

type tfModule struct {
	dir       string
	files     map[string]*hcl.File
	locals    map[string]hcl.Expression
	resources map[string]map[string]*hclsyntax.Block // type -> name -> block
	variables map[string]*hclsyntax.Block
	outputs   map[string]hcl.Expression
	calls     map[string]*hclsyntax.Block // module calls by name
	children  map[string]*tfModule        // the called (local) modules by call name
	values    map[string]cty.Value        // var and local as evalContext offers them, once evaluated
}

func loadTerraform(t *testing.T) *tfModule {
	t.Helper()
	return loadModule(t, ".", map[string]*tfModule{})
}

// loadModule parses the .tf files of dir and, through its module calls, of the local modules it calls.
func loadModule(t *testing.T, dir string, loaded map[string]*tfModule) *tfModule {
	t.Helper()
	if m, ok := loaded[dir]; ok {
		return m
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no .tf files in terraform/%s (%v)", dir, err)
	}
	m := &tfModule{dir: dir, files: map[string]*hcl.File{}, locals: map[string]hcl.Expression{}, resources: map[string]map[string]*hclsyntax.Block{},
		variables: map[string]*hclsyntax.Block{}, outputs: map[string]hcl.Expression{}, calls: map[string]*hclsyntax.Block{}, children: map[string]*tfModule{}}
	loaded[dir] = m
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
						t.Fatalf("%s: local %q defined twice", dir, name)
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
			case "variable":
				m.variables[b.Labels[0]] = b
			case "output":
				if a, ok := b.Body.Attributes["value"]; ok {
					m.outputs[b.Labels[0]] = a.Expr
				}
			case "module":
				name := b.Labels[0]
				m.calls[name] = b
				a, ok := b.Body.Attributes["source"]
				if !ok {
					t.Fatalf("%s: module %s has no source", dir, name)
				}
				v, diags := a.Expr.Value(nil)
				if diags.HasErrors() || !v.Type().Equals(cty.String) {
					t.Fatalf("%s: module %s: source is not a literal string", dir, name)
				}
				src := v.AsString()
				if !strings.HasPrefix(src, "./") && !strings.HasPrefix(src, "../") {
					t.Fatalf("%s: module %s: source %s is not a local path; this test cannot follow it", dir, name, src)
				}
				m.children[name] = loadModule(t, filepath.Join(dir, src), loaded)
			}
		}
	}
	return m
}

// all lists this module and every module it calls, directly or not.
func (m *tfModule) all() []*tfModule {
	out := []*tfModule{m}
	for _, name := range sortedKeys(m.children) {
		for _, c := range m.children[name].all() {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// scope is a module as one call instantiates it: its var.<name> are that call's arguments (or the
// variables' defaults). The root module has no call.
type scope struct {
	m      *tfModule
	call   *hclsyntax.Block
	parent *scope
	prefix string // address prefix of its objects: "" for the root, "module.<call>." or "module.<call>[\"<key>\"]." for a called module
	// each is set on the calling module's scope as one instance of a for_each call sees it: each.key and
	// each.value in that call's arguments.
	each *eachInstance
}

// eachInstance is one key of a module call whose for_each is an object literal (a table of rows).
type eachInstance struct {
	key string
	row *hclsyntax.ObjectConsExpr
}

// child is the scope of module call name in s: for a call with for_each over a table, the one whose key
// is key (which must then be given); for any other call, the call as a whole (key is ignored).
func (s *scope) child(t *testing.T, name, key string) *scope {
	t.Helper()
	rows := s.rows(t, name)
	if rows == nil {
		return s.instance(t, name, "", nil)
	}
	row, ok := rows[key]
	if !ok {
		t.Fatalf("terraform: %smodule.%s has no key %q (its for_each table has %v)", s.prefix, name, key, sortedKeys(rows))
	}
	return s.instance(t, name, key, row)
}

// instances lists the scopes of module call name: one per key of its for_each table, or the call itself.
func (s *scope) instances(t *testing.T, name string) []*scope {
	t.Helper()
	rows := s.rows(t, name)
	if rows == nil {
		return []*scope{s.instance(t, name, "", nil)}
	}
	var out []*scope
	for _, k := range sortedKeys(rows) {
		out = append(out, s.instance(t, name, k, rows[k]))
	}
	return out
}

// instance is the scope of module call name (which rows has checked) as the row key of its for_each
// table sees it (row nil: the call as a whole).
func (s *scope) instance(t *testing.T, name, key string, row *hclsyntax.ObjectConsExpr) *scope {
	t.Helper()
	c := s.m.children[name] // rows has checked that name is a call
	if row == nil {
		return &scope{m: c, call: s.m.calls[name], parent: s, prefix: s.prefix + "module." + name + "."}
	}
	caller := *s
	caller.each = &eachInstance{key: key, row: row}
	return &scope{m: c, call: s.m.calls[name], parent: &caller, prefix: fmt.Sprintf("%smodule.%s[%q].", s.prefix, name, key)}
}

// rows is the for_each table of module call name by key, when its for_each resolves to an object literal
// (a local holding one); nil for a call without for_each or with another one (a set, a condition).
func (s *scope) rows(t *testing.T, name string) map[string]*hclsyntax.ObjectConsExpr {
	t.Helper()
	call, ok := s.m.calls[name]
	if !ok {
		t.Fatalf("terraform: %smodule.%s is not a module call", s.prefix, name)
	}
	fe, ok := call.Body.Attributes["for_each"]
	if !ok {
		return nil
	}
	e, _ := s.resolve(t, fe.Expr)
	table, ok := e.(*hclsyntax.ObjectConsExpr)
	if !ok {
		return nil
	}
	rows := map[string]*hclsyntax.ObjectConsExpr{}
	for _, it := range table.Items {
		k, diags := it.KeyExpr.Value(nil)
		row, ok := it.ValueExpr.(*hclsyntax.ObjectConsExpr)
		if diags.HasErrors() || !k.Type().Equals(cty.String) || !ok {
			t.Fatalf("terraform: the for_each table of %smodule.%s must have literal keys and object rows", s.prefix, name)
		}
		rows[k.AsString()] = row
	}
	return rows
}

// resolve follows var.<name> (and local.<name>) to the expression that gives its value: the module call's
// argument in the calling module, or the variable's default.
func (s *scope) resolve(t *testing.T, e hcl.Expression) (hcl.Expression, *scope) {
	t.Helper()
	for {
		st, ok := e.(*hclsyntax.ScopeTraversalExpr)
		if ok && st.Traversal.RootName() == "each" && s.each != nil {
			e = s.each.resolve(t, st.Traversal)
			continue
		}
		if !ok || len(st.Traversal) != 2 {
			return e, s
		}
		attr, ok := st.Traversal[1].(hcl.TraverseAttr)
		if !ok {
			return e, s
		}
		switch st.Traversal.RootName() {
		case "local":
			le, ok := s.m.locals[attr.Name]
			if !ok {
				t.Fatalf("terraform: %s: local.%s is not defined", s.m.dir, attr.Name)
			}
			e = le
		case "var":
			if s.call == nil {
				return e, s // an input of the root module: as far as this test can follow
			}
			if a, ok := s.call.Body.Attributes[attr.Name]; ok {
				e, s = a.Expr, s.parent
				continue
			}
			v, ok := s.m.variables[attr.Name]
			if !ok {
				t.Fatalf("terraform: %s: var.%s is not declared", s.m.dir, attr.Name)
			}
			d, ok := v.Body.Attributes["default"]
			if !ok {
				t.Fatalf("terraform: %smodule call sets no %s and the variable has no default", strings.TrimSuffix(s.prefix, "."), attr.Name)
			}
			e = d.Expr
		default:
			return e, s
		}
	}
}

// resolve is each.key (as a literal) or each.value.<attr> (the row's expression for attr, which resolves
// in the calling module, where the table is).
func (i *eachInstance) resolve(t *testing.T, tr hcl.Traversal) hcl.Expression {
	t.Helper()
	attr := func(n int) string {
		a, ok := tr[n].(hcl.TraverseAttr)
		if !ok {
			t.Fatalf("terraform: the row %q: only each.key and each.value.<attr> are followed by this test", i.key)
		}
		return a.Name
	}
	switch {
	case len(tr) == 2 && attr(1) == "key":
		return &hclsyntax.LiteralValueExpr{Val: cty.StringVal(i.key)}
	case len(tr) == 3 && attr(1) == "value":
		if e := item(i.row, attr(2)); e != nil {
			return e
		}
		t.Fatalf("terraform: the row %q of a for_each table has no %s", i.key, attr(2))
	}
	t.Fatalf("terraform: the row %q: only each.key and each.value.<attr> are followed by this test", i.key)
	return nil
}

// object resolves e to an object literal.
func (s *scope) object(t *testing.T, e hcl.Expression, what string) (*hclsyntax.ObjectConsExpr, *scope) {
	t.Helper()
	e, s = s.resolve(t, e)
	o, ok := e.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("terraform: %s must be an object literal, a local or a module argument holding one", what)
	}
	return o, s
}

// item is the value expression of key in an object literal, or nil.
func item(o *hclsyntax.ObjectConsExpr, key string) hcl.Expression {
	for _, it := range o.Items {
		if k, diags := it.KeyExpr.Value(nil); !diags.HasErrors() && k.Type().Equals(cty.String) && k.AsString() == key {
			return it.ValueExpr
		}
	}
	return nil
}

// literalString resolves e to a literal string.
func (s *scope) literalString(t *testing.T, e hcl.Expression, what string) string {
	t.Helper()
	e, _ = s.resolve(t, e)
	v, _ := e.Value(nil)
	return stringOf(t, v, what)
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

// evalContext offers the variables' defaults, the locals that evaluate from them and from each other
// (the production plan of a default configuration: no webhook), and the few functions the names use;
// each, when given, as each.key and each.value. The variables and locals are evaluated once per module.
func (m *tfModule) evalContext(each map[string]cty.Value) *hcl.EvalContext {
	if m.values == nil {
		m.values = m.evaluate()
	}
	ctx := &hcl.EvalContext{Functions: evalFunctions, Variables: map[string]cty.Value{}}
	maps.Copy(ctx.Variables, m.values)
	if each != nil {
		ctx.Variables["each"] = cty.ObjectVal(each)
	}
	return ctx
}

// evaluate is var (the variables' defaults) and local (the locals that evaluate from them and from each
// other), as evalContext offers them.
func (m *tfModule) evaluate() map[string]cty.Value {
	ctx := &hcl.EvalContext{Functions: evalFunctions, Variables: map[string]cty.Value{}}
	vars := map[string]cty.Value{}
	for name, b := range m.variables {
		if d, ok := b.Body.Attributes["default"]; ok {
			if v := literal(d.Expr, ctx); v != cty.NilVal {
				vars[name] = v
			}
		}
	}
	ctx.Variables["var"] = cty.ObjectVal(vars)
	// A local may name another: evaluate them all again until a round changes nothing (each round
	// resolves at least one more level; an object local fills in as the locals it names do).
	locals := map[string]cty.Value{}
	for range len(m.locals) + 1 {
		ctx.Variables["local"] = cty.ObjectVal(locals)
		next := map[string]cty.Value{}
		for name, e := range m.locals {
			if v := literal(e, ctx); v != cty.NilVal {
				next[name] = v
			}
		}
		if cty.ObjectVal(next).RawEquals(cty.ObjectVal(locals)) {
			break
		}
		locals = next
	}
	return map[string]cty.Value{"var": cty.ObjectVal(vars), "local": cty.ObjectVal(locals)}
}

// evalFunctions are the functions the names and for_each sets use.
var evalFunctions = map[string]function.Function{
	"toset": function.New(&function.Spec{
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
			if len(vals) == 0 {
				return cty.SetValEmpty(cty.String), nil
			}
			return cty.SetVal(vals), nil
		},
	}),
	"concat": stdlib.ConcatFunc,
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

// functions lists every function the module deploys, its own and those of the modules it calls, keyed
// by address: google_cloudfunctions2_function.<name>, module.<call>, or module.<call>["<key>"] for each
// row of a call's for_each table (a called module holds at most one).
func (m *tfModule) functions(t *testing.T) map[string]tfFunction {
	t.Helper()
	out := map[string]tfFunction{}
	var collect func(s *scope)
	collect = func(s *scope) {
		fns := s.m.resources["google_cloudfunctions2_function"]
		if s.call != nil && len(fns) > 1 {
			t.Fatalf("terraform: %s declares %d functions; this test expects one per module call", s.m.dir, len(fns))
		}
		for name, b := range fns {
			addr := s.prefix + "google_cloudfunctions2_function." + name
			if s.call != nil {
				addr = strings.TrimSuffix(s.prefix, ".")
			}
			out[addr] = s.function(t, addr, b)
		}
		for _, name := range sortedKeys(s.m.calls) {
			for _, c := range s.instances(t, name) {
				collect(c)
			}
		}
	}
	collect(&scope{m: m})
	return out
}

// function reads one google_cloudfunctions2_function block, following the module's variables.
func (s *scope) function(t *testing.T, addr string, b *hclsyntax.Block) tfFunction {
	t.Helper()
	f := tfFunction{addr: addr, env: map[string]bool{}, secretEnv: map[string]bool{}}
	mount := func(key string, secret hcl.Expression, ss *scope) {
		if f.secretEnv[key] {
			t.Errorf("function %s mounts %s twice", addr, key)
		}
		f.secretEnv[key] = true
		se, ss := ss.resolve(t, secret)
		f.secrets = append(f.secrets, ss.m.source(se, 0))
	}
	for _, sub := range b.Body.Blocks {
		switch sub.Type {
		case "build_config":
			a, ok := sub.Body.Attributes["entry_point"]
			if !ok {
				t.Fatalf("terraform: function %s has no entry_point", addr)
			}
			f.entryPoint = s.literalString(t, a.Expr, "entry_point of "+addr)
		case "service_config":
			if a, ok := sub.Body.Attributes["service_account_email"]; ok {
				e, es := s.resolve(t, a.Expr)
				if m := saRef.FindStringSubmatch(es.m.source(e, 0)); m != nil {
					f.sa = es.prefix + "google_service_account." + m[1]
				}
			}
			if a, ok := sub.Body.Attributes["environment_variables"]; ok {
				o, _ := s.object(t, a.Expr, "environment_variables of "+addr)
				for _, k := range objectKeys(t, o, "environment_variables of "+addr) {
					f.env[k] = true
				}
			}
			for _, blk := range sub.Body.Blocks {
				switch {
				case blk.Type == "secret_environment_variables":
					mount(s.literalString(t, blk.Body.Attributes["key"].Expr, "secret_environment_variables key of "+addr), blk.Body.Attributes["secret"].Expr, s)
				case blk.Type == "dynamic" && len(blk.Labels) == 1 && blk.Labels[0] == "secret_environment_variables":
					s.dynamicSecrets(t, addr, blk, mount)
				case blk.Type == "dynamic":
					t.Fatalf("terraform: function %s: dynamic %v blocks are not followed by this test", addr, blk.Labels)
				}
			}
		}
	}
	return f
}

// dynamicSecrets follows a dynamic "secret_environment_variables" block: its for_each must resolve to a
// list of object literals (or locals holding them), and its content take key and secret from each element.
func (s *scope) dynamicSecrets(t *testing.T, addr string, blk *hclsyntax.Block, mount func(string, hcl.Expression, *scope)) {
	t.Helper()
	iter := "secret_environment_variables"
	if a, ok := blk.Body.Attributes["iterator"]; ok {
		iter = hcl.ExprAsKeyword(a.Expr)
	}
	var content *hclsyntax.Block
	for _, c := range blk.Body.Blocks {
		if c.Type == "content" {
			content = c
		}
	}
	fe, ok := blk.Body.Attributes["for_each"]
	if content == nil || !ok {
		t.Fatalf("terraform: function %s: dynamic secret_environment_variables without for_each or content", addr)
	}
	list, ls := s.resolve(t, fe.Expr)
	tuple, ok := list.(*hclsyntax.TupleConsExpr)
	if !ok {
		t.Fatalf("terraform: function %s: the secret list must be a list literal (in the module call or a default)", addr)
	}
	// field returns the element's attribute that content's attr takes (iter.value.<field>).
	field := func(attr string) string {
		a, ok := content.Body.Attributes[attr]
		if !ok {
			t.Fatalf("terraform: function %s: dynamic secret_environment_variables sets no %s", addr, attr)
		}
		st, ok := a.Expr.(*hclsyntax.ScopeTraversalExpr)
		if !ok || len(st.Traversal) != 3 || st.Traversal.RootName() != iter {
			t.Fatalf("terraform: function %s: dynamic secret_environment_variables: %s must be %s.value.<field>", addr, attr, iter)
		}
		v, ok1 := st.Traversal[1].(hcl.TraverseAttr)
		fld, ok2 := st.Traversal[2].(hcl.TraverseAttr)
		if !ok1 || !ok2 || v.Name != "value" {
			t.Fatalf("terraform: function %s: dynamic secret_environment_variables: %s must be %s.value.<field>", addr, attr, iter)
		}
		return fld.Name
	}
	keyField, secretField := field("key"), field("secret")
	for _, el := range tuple.Exprs {
		o, os := ls.object(t, el, "a secret of "+addr)
		k, sec := item(o, keyField), item(o, secretField)
		if k == nil || sec == nil {
			t.Fatalf("terraform: function %s: a secret without %s or %s", addr, keyField, secretField)
		}
		mount(os.literalString(t, k, "secret key of "+addr), sec, os)
	}
}

// objectKeys lists the keys of an object literal.
func objectKeys(t *testing.T, o *hclsyntax.ObjectConsExpr, what string) []string {
	t.Helper()
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

// codeEntryPoints reads the routing table (pipeline.Routes, which registers every entry point): a route
// a Pub/Sub push subscription calls is "PubSub", any other "HTTP".
func codeEntryPoints() map[string]string {
	out := map[string]string{}
	for _, r := range pipeline.Routes {
		out[r.Entry] = "HTTP"
		if r.Trigger.Pushed() {
			out[r.Entry] = "PubSub"
		}
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
	designRow   = regexp.MustCompile("^\\|\\s*`functions/[a-z]+`\\s*\\|\\s*`([A-Za-z]+)`\\s*\\|\\s*(HTTP|Pub/Sub push)\\s*\\|(.*)\\|\\s*$")
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
		if d.kind == "Pub/Sub push" {
			d.kind = "PubSub"
		}
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

// indexKey is the string key of module.<call>["<key>"], alone or followed by .<output>.
func indexKey(tr hcl.Traversal) (string, bool) {
	if len(tr) < 3 {
		return "", false
	}
	idx, ok := tr[2].(hcl.TraverseIndex)
	if !ok || !idx.Key.Type().Equals(cty.String) {
		return "", false
	}
	return idx.Key.AsString(), true
}

// pushTargets maps a topic key (of local.topic_names) to the function its push subscription calls (its
// address, as functions() keys it), read from local.push.<key>: a call of a module that holds one
// function (module.<call>["<key>"], or module.<call> of a call without a table), or one of its outputs
// (module.<call>.<output>, which must then be the function's), or google_cloudfunctions2_function.<fn>.
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
			if len(tr) < 2 {
				continue
			}
			name, ok := tr[1].(hcl.TraverseAttr)
			if !ok {
				continue
			}
			var fn string
			switch tr.RootName() {
			case "google_cloudfunctions2_function":
				fn = "google_cloudfunctions2_function." + name.Name
			case "module":
				fn = "module." + name.Name
				child, ok := m.children[name.Name]
				if !ok {
					t.Fatalf("terraform: local.push.%s refers to module.%s, which is not a module call", k.AsString(), name.Name)
				}
				// One row of a for_each table: the function's address has its key, as functions() has it.
				if key, ok := indexKey(tr); ok && (&scope{m: m}).rows(t, name.Name) != nil {
					fn = fmt.Sprintf("module.%s[%q]", name.Name, key)
				}
				// module.<call>.<output> or module.<call>[key].<output>: the output must be the function's.
				for _, step := range tr[2:] {
					if attr, ok := step.(hcl.TraverseAttr); ok {
						oe, ok := child.outputs[attr.Name]
						if !ok {
							t.Fatalf("terraform: local.push.%s: module.%s has no output %s", k.AsString(), name.Name, attr.Name)
						}
						if !slices.ContainsFunc(oe.Variables(), func(v hcl.Traversal) bool { return v.RootName() == "google_cloudfunctions2_function" }) {
							t.Fatalf("terraform: local.push.%s: output %s of module.%s is not its function's", k.AsString(), attr.Name, name.Name)
						}
						break
					}
				}
			default:
				continue
			}
			if prev, ok := out[k.AsString()]; ok && prev != fn {
				t.Fatalf("terraform: local.push.%s refers to two functions (%s, %s)", k.AsString(), prev, fn)
			}
			out[k.AsString()] = fn
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
	tf := loadTerraform(t)
	code := codeEntryPoints()
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
			t.Errorf("terraform deploys entry point %s (%s) but the routing table (functions.go) has no such route", f.entryPoint, res)
		case kind == "PubSub" && !pushed[res]:
			t.Errorf("%s is a Pub/Sub push endpoint but no Pub/Sub push subscription calls %s", f.entryPoint, res)
		case kind == "HTTP" && pushed[res]:
			t.Errorf("%s is an HTTP function but a Pub/Sub push subscription calls it", f.entryPoint)
		}
	}
	for _, name := range sortedKeys(code) {
		if !deployed[name] {
			t.Errorf("the routing table has %s (%s) but terraform deploys no function with that entry point", name, code[name])
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

	// The routing table: each Pub/Sub route is pushed the topic its TOPIC_* variable names by default,
	// which has a dead-letter topic with its own subscription; docs/design.md names the same topic.
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
	routeTopic := map[string]string{}
	for _, r := range pipeline.Routes {
		if !r.Trigger.Pushed() {
			continue
		}
		e, ok := env[r.Var]
		if !ok || !strings.HasPrefix(r.Var, "TOPIC_") {
			t.Errorf("routing table: %s is pushed the topic %s names, which is no TOPIC_* variable of shared/config", r.Entry, r.Var)
			continue
		}
		routeTopic[r.Entry] = e.def
		key, ok := keyOf[e.def]
		if !ok {
			t.Errorf("routing table: %s is triggered by topic %s, terraform creates no such topic", r.Entry, e.def)
			continue
		}
		if r.Trigger != pipeline.PubSub {
			continue // the webhook's subscription exists only with a webhook URL (service_webhook.tf)
		}
		if got, want := targets[key], byEntry[r.Entry]; got == "" || got != want {
			t.Errorf("topic %s must be pushed to %s (%s), terraform pushes it to %q", e.def, r.Entry, want, got)
		}
		if _, ok := pushNames[key]; !ok {
			t.Errorf("topic %s has no push subscription", e.def)
		}
		if got, want := deadTopics[key], e.def+"-dead-letter"; got != want {
			t.Errorf("topic %s: dead-letter topic is %q, want %q", e.def, got, want)
		}
		if _, ok := deadSubs[key]; !ok {
			t.Errorf("dead-letter topic %s-dead-letter has no subscription", e.def)
		}
	}
	for _, d := range designFunctions(t) {
		if d.topic != "" && d.topic != routeTopic[d.entryPoint] {
			t.Errorf("docs/design.md: %s is triggered by topic %s, the routing table says %q", d.entryPoint, d.topic, routeTopic[d.entryPoint])
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
