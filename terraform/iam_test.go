package terraform_test

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// source returns the text of an expression as written, with every local.<name> it mentions expanded
// (recursively), so references to service accounts and secret variables can be read off it.
func (m *tfModule) source(e hcl.Expression, depth int) string {
	r := e.Range()
	f := m.files[r.Filename]
	if f == nil {
		return ""
	}
	text := string(r.SliceBytes(f.Bytes))
	if depth > 5 {
		return text
	}
	return localRef.ReplaceAllStringFunc(text, func(ref string) string {
		name := strings.SplitN(strings.TrimPrefix(ref, "local."), ".", 2)[0]
		if le, ok := m.locals[name]; ok {
			return "(" + m.source(le, depth+1) + ")" + ref[len("local."+name):]
		}
		return ref
	})
}

var (
	localRef  = regexp.MustCompile(`local\.[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*`)
	saRef     = regexp.MustCompile(`google_service_account\.([A-Za-z0-9_]+)(\[[^\]]*\])?\.(member|email)`)
	moduleOut = regexp.MustCompile(`module\.([A-Za-z0-9_]+)(\[[^\]]*\])?\.([A-Za-z0-9_]+)`)
	secretVar = regexp.MustCompile(`var\.([A-Za-z0-9_]+_secret_id)`)
	basicRole = regexp.MustCompile(`roles/(owner|editor|viewer)"`)
	// Roles that let the holder act as any service account, or change IAM, when granted on the project;
	// on one service account (google_service_account_iam_member) they are the narrow grant.
	projectWideRoles = []string{"roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator", "roles/secretmanager.admin",
		"roles/secretmanager.secretAccessor", "roles/resourcemanager.projectIamAdmin", "roles/storage.admin", "roles/cloudkms.admin",
		"roles/cloudkms.cryptoKeyEncrypterDecrypter"}
)

// accounts names the service accounts an expression's text refers to, by address
// ([module.<call>.]google_service_account.<name>), following module.<call>.<output> into the called module.
func (s *scope) accounts(t *testing.T, text string) []string {
	t.Helper()
	var out []string
	for _, m := range saRef.FindAllStringSubmatch(text, -1) {
		out = append(out, s.prefix+"google_service_account."+m[1])
	}
	for _, m := range moduleOut.FindAllStringSubmatch(text, -1) {
		c := s.child(t, m[1], strings.Trim(m[2], `[]"`))
		if oe, ok := c.m.outputs[m[3]]; ok {
			out = append(out, c.accounts(t, c.m.source(oe, 0))...)
		}
	}
	return out
}

func attrSource(m *tfModule, b *hclsyntax.Block, name string) string {
	if a, ok := b.Body.Attributes[name]; ok {
		return m.source(a.Expr, 0)
	}
	return ""
}

// TestNoBroadRoles: nothing in the module grants a basic role (owner, editor, viewer) at any level, and
// no project-wide grant lets its holder act as other accounts, read every secret or key, or change IAM
// (those roles are granted on the one service account, secret or key concerned).
func TestNoBroadRoles(t *testing.T) {
	for _, m := range loadTerraform(t).all() {
		for p, f := range m.files {
			if loc := basicRole.FindIndex(f.Bytes); loc != nil {
				t.Errorf("%s grants %s", p, f.Bytes[loc[0]:loc[1]-1])
			}
		}
		// Project-level grants: each names one role, none of them basic, and no policy replaces the project's.
		for typ := range m.resources {
			if strings.HasPrefix(typ, "google_project_iam_") && typ != "google_project_iam_member" {
				t.Errorf("%s: %s: the module must add members, never set a project's policy or bindings", m.dir, typ)
			}
		}
		for name, b := range m.resources["google_project_iam_member"] {
			role := attrSource(m, b, "role")
			if !strings.HasPrefix(strings.Trim(role, `"`), "roles/") || strings.Contains(role, "${") {
				t.Errorf("%s: google_project_iam_member.%s: role %s is not a literal role", m.dir, name, role)
			}
			if slices.Contains(projectWideRoles, strings.Trim(role, `"`)) {
				t.Errorf("%s: google_project_iam_member.%s grants %s on the whole project", m.dir, name, role)
			}
		}
	}
}

// TestSecretsReadOnlyByTheirFunctions: each secret is readable exactly by the service accounts of the
// functions that mount it (secret_environment_variables), granted on the secret itself.
func TestSecretsReadOnlyByTheirFunctions(t *testing.T) {
	m := loadTerraform(t)
	mounted := map[string]map[string]bool{} // secret variable -> service accounts of the functions mounting it
	for name, f := range m.functions(t) {
		var secrets []string
		for _, text := range f.secrets {
			if v := secretVar.FindStringSubmatch(text); v != nil {
				secrets = append(secrets, v[1])
			} else {
				t.Errorf("function %s mounts a secret not named by a *_secret_id variable: %s", name, text)
			}
		}
		if f.sa == "" {
			t.Errorf("function %s runs as no service account of the module", name)
			continue
		}
		for _, s := range secrets {
			if mounted[s] == nil {
				mounted[s] = map[string]bool{}
			}
			mounted[s][f.sa] = true
		}
	}
	granted := map[string]map[string]bool{} // secret variable -> service accounts granted access
	// Grants in a called module are checked as written there: their secret_id must then name a root
	// *_secret_id variable directly, which a module's own variables do not, so they are reported.
	var grants func(s *scope)
	grants = func(s *scope) {
		for name, b := range s.m.resources["google_secret_manager_secret_iam_member"] {
			v := secretVar.FindStringSubmatch(attrSource(s.m, b, "secret_id"))
			if v == nil || s.call != nil {
				t.Errorf("%sgoogle_secret_manager_secret_iam_member.%s: secret_id %s", s.prefix, name, attrSource(s.m, b, "secret_id"))
				continue
			}
			if role := attrSource(s.m, b, "role"); role != `"roles/secretmanager.secretAccessor"` {
				t.Errorf("google_secret_manager_secret_iam_member.%s: role %s, want the accessor role only", name, role)
			}
			members := attrSource(s.m, b, "member")
			if strings.Contains(members, "each.value") {
				members = attrSource(s.m, b, "for_each")
			}
			if granted[v[1]] == nil {
				granted[v[1]] = map[string]bool{}
			}
			for _, sa := range s.accounts(t, members) {
				granted[v[1]][sa] = true
			}
		}
		for _, typ := range []string{"google_secret_manager_secret_iam_binding", "google_secret_manager_secret_iam_policy"} {
			if len(s.m.resources[typ]) > 0 {
				t.Errorf("%s%s: grant secrets member by member", s.prefix, typ)
			}
		}
		for _, name := range sortedKeys(s.m.calls) {
			for _, c := range s.instances(t, name) {
				grants(c)
			}
		}
	}
	grants(&scope{m: m})
	if len(mounted) == 0 {
		t.Fatal("no function mounts a secret: the test reads the module wrong")
	}
	for _, s := range slices.Sorted(maps.Keys(mounted)) {
		need, have := slices.Sorted(maps.Keys(mounted[s])), slices.Sorted(maps.Keys(granted[s]))
		if !slices.Equal(need, have) {
			t.Errorf("secret %s: readable by %v, mounted by the functions of %v", s, have, need)
		}
	}
	for s := range granted {
		if mounted[s] == nil {
			t.Errorf("secret %s is granted but no function mounts it", s)
		}
	}
}
