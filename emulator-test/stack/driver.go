package stack

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portability-pipeline/pipeline/emulator-test/scenario"
)

// The Stack is the process driver of scenario.Driver: a scenario written against that interface runs
// here as on the in-process bus.
var _ scenario.Driver = (*Stack)(nil)

// Account is the Google account a user of the stack consents with at the fake.
func Account(user string) string { return user + "@example.com" }

// View implements scenario.Driver.
func (s *Stack) View() scenario.View {
	return scenario.View{Store: s.Store(), Firestore: s.FirestoreClient, Bucket: s.StorageClient.Bucket(s.Bucket), BucketName: s.Bucket,
		ObjectPrefix: "exports", Fake: s.Fake, Account: Account}
}

// SignIn implements scenario.Driver: user consents on the consent page with their Account (SignInAs).
func (s *Stack) SignIn(ctx context.Context, user string, resources []string, access string) error {
	return s.SignInAs(ctx, user, resources, Consent{Account: Account(user), Access: access})
}

// SignInAs walks user through the start link of resources and the consent page as c says, and expects
// the callback's "export has started". A fault on the calls the callback makes (token exchange,
// accessType.check) gives the person an error page that asks them to try again, with nothing stored;
// they do, up to 4 times in all.
func (s *Stack) SignInAs(ctx context.Context, user string, resources []string, c Consent) error {
	var page *Page
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		page, err = SignIn(ctx, s.StartLink(user, resources), c)
		if err != nil || page.Status != http.StatusBadGateway {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("sign in %s: %w", user, err)
	}
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "export has started") {
		return fmt.Errorf("sign in %s: callback answered %d: %.200s", user, page.Status, page.Body)
	}
	return nil
}

// RunUntilClosed implements scenario.Driver with WaitClosed.
func (s *Stack) RunUntilClosed(ctx context.Context, users ...string) error {
	return s.WaitClosed(ctx, users, nil)
}

// WaitClosed waits until every user's grant is closed (one-time: after the reset; time-based: after the
// last round), calling progress every tick. When only future tasks are pending (a time-based grant
// waiting a day), it advances the fake's clock to the next one.
func (s *Stack) WaitClosed(ctx context.Context, users []string, progress func()) error {
	st := s.Store()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	idle := 0
	for {
		open := 0
		for _, u := range users {
			usr, err := st.GetUser(ctx, u)
			if err != nil || usr.State != "closed" {
				open++
			}
		}
		if progress != nil {
			progress()
		}
		if open == 0 {
			return nil
		}
		if s.quiet() {
			idle++
		} else {
			idle = 0
		}
		// Nothing moves for a while: jump the virtual clock to the next scheduled task.
		if idle >= 4 {
			if d, ok := s.Tasks.NextDue(); ok {
				if wait := d.Sub(s.Fake.Clock().Now()); wait > 0 {
					s.Fake.Clock().Advance(wait + time.Second)
				}
			}
			idle = 0
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d users still open: %w", open, len(users), ctx.Err())
		case <-tick.C:
		}
	}
}

// quiet reports that no task is running or due: what remains waits for the clock.
func (s *Stack) quiet() bool { return !s.Tasks.Busy() }

// Take gives a test the stack to itself (tests of one binary share the stack and take it in turn), its
// data cleared, with a context that ends after limit; the test's cleanup hands the stack on.
func (s *Stack) Take(t testing.TB, limit time.Duration) context.Context {
	t.Helper()
	s.turn.Lock()
	t.Cleanup(s.turn.Unlock)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	if err := s.ClearData(ctx); err != nil {
		t.Fatalf("clear the stack: %v", err)
	}
	return ctx
}
