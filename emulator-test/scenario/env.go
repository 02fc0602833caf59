package scenario

// Env is the default test environment of a pipeline whose Data Portability API and Google sign-in are
// the fake at fakeURL, in project with its archive bucket: what both drivers give the steps before their
// own variables (task URLs, emulator hosts, part sizes) and a test's overrides.
func Env(project, bucket, fakeURL, keyset string) map[string]string {
	return map[string]string{
		"PROJECT_ID":           project,
		"BUCKET":               bucket,
		"TASKS_QUEUE":          "projects/" + project + "/locations/local/queues/portability",
		"TASKS_INVOKER_EMAIL":  "tasks-invoker@" + project + ".iam.gserviceaccount.com",
		"PORTABILITY_ENDPOINT": fakeURL + "/",
		"ARCHIVE_URL_HOSTS":    fakeURL, // the fake signs archive URLs on its own plain-http host
		"OAUTH_CLIENT_ID":      "fake-client-id",
		"OAUTH_CLIENT_SECRET":  "fake-client-secret",
		"OAUTH_AUTH_URL":       fakeURL + "/o/oauth2/v2/auth",
		"OAUTH_TOKEN_URL":      fakeURL + "/token",
		"OAUTH_REVOKE_URL":     fakeURL + "/revoke",
		"TOKEN_KEYSET":         keyset,
		"POLL_LADDER":          "1s,2s,4s",
	}
}
