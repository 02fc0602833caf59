package startlink_test

import (
	"fmt"
	"net/url"
	"time"

	"github.com/portability-pipeline/pipeline/shared/startlink"
)

// The app's side, as functions/oauthcallback/README.md shows it: sign a start link with a display name
// and a short status link with the current key of the keyset.
func ExampleSign() {
	const publicURL = "https://oauth-callback.example.run.app"
	keys, err := startlink.ParseKeyset("k2:a-new-secret-of-at-least-32-characters,k1:the-old-secret-of-at-least-32-characters")
	if err != nil {
		panic(err)
	}
	start := startlink.Sign(keys.Current(), startlink.Link{
		User: "alice", Name: "Alice Martin (alice@example.com)",
		Resources: []string{"youtube.subscriptions", "myactivity.search"},
		Purpose:   startlink.PurposeStart, Expires: time.Now().Add(30 * time.Minute),
	})
	startURL := publicURL + "/start?" + start.Encode()

	status := startlink.Sign(keys.Current(), startlink.Link{
		User: "alice", Purpose: startlink.PurposeStatus, Expires: time.Now().Add(5 * time.Minute),
	})
	statusURL := publicURL + "/status?" + status.Encode()

	// What the pipeline checks.
	for _, link := range []struct{ url, purpose string }{{startURL, startlink.PurposeStart}, {statusURL, startlink.PurposeStatus}} {
		u, _ := url.Parse(link.url)
		l, err := startlink.Verify(keys, link.purpose, u.Query(), time.Now(), startlink.MaxStartTTL)
		fmt.Println(u.Path, l.KeyID, l.User, l.Resources, l.Name, err)
	}
	// Output:
	// /start k2 alice [myactivity.search youtube.subscriptions] Alice Martin (alice@example.com) <nil>
	// /status k2 alice []  <nil>
}
