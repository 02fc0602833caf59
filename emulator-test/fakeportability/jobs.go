package fakeportability

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Job states as the API names them.
const (
	StateInProgress = "IN_PROGRESS"
	StateComplete   = "COMPLETE"
	StateFailed     = "FAILED"
	StateCancelled  = "CANCELLED"
)

// job is one archive job. Its state follows from the virtual clock: IN_PROGRESS until doneAt, then outcome.
type job struct {
	id          string
	user        string
	resources   []string // sorted
	oneTime     bool
	createdAt   time.Time
	doneAt      time.Time
	outcome     string    // state at doneAt: COMPLETE, FAILED or CANCELLED (faults)
	cancelledAt time.Time // set by archiveJobs.cancel
	startTime   string    // echoed when sent
	endTime     string
	exportTime  time.Time
	retryOf     string // the job this one retries
	root        *job   // the original job of a retry chain (itself for an original)
	retries     int    // on the root: retries made in the chain
	retriedBy   string
	epoch       int // the user's reset epoch at creation
	files       []*jobFile
}

type jobFile struct {
	index int
	name  string
	obj   *object
}

func (j *job) state(now time.Time) string {
	if !j.cancelledAt.IsZero() {
		return StateCancelled
	}
	if now.Before(j.doneAt) {
		return StateInProgress
	}
	return j.outcome
}

func (j *job) accessType() string {
	if j.oneTime {
		return "ACCESS_TYPE_ONE_TIME"
	}
	return "ACCESS_TYPE_TIME_BASED"
}

// completedAt is when the archive became available (retention counts from it).
func (j *job) completedAt() time.Time { return j.doneAt }

// newJobLocked creates a job, drawing its outcome from the job faults of its resources.
func (s *Server) newJobLocked(u *user, groups []string, oneTime bool, startTime, endTime string, exportTime time.Time) *job {
	now := s.clock.Now()
	j := &job{
		id: "job-" + randomID(10), user: u.name, resources: groups, oneTime: oneTime,
		createdAt: now, doneAt: now.Add(s.opts.JobDuration), outcome: StateComplete,
		startTime: startTime, endTime: endTime, exportTime: exportTime, epoch: u.epoch,
	}
	j.root = j
	j.outcome = s.faults.takeJobOutcome(u.name, groups)
	if j.outcome == stalled { // a job Google never finishes: IN_PROGRESS for a century of virtual time
		j.outcome, j.doneAt = StateInProgress, now.Add(100*365*24*time.Hour)
	}
	if startTime != "" || endTime != "" {
		from, to := s.activityRange(startTime, exportTime)
		j.files = s.activityFiles(groups, from, to)
	} else {
		j.files = s.jobFiles(groups)
	}
	s.jobs[j.id] = j
	s.jobSeq = append(s.jobSeq, j)
	return j
}

// jobFiles lays out the files of a job over the shared object cache (see layoutFiles).
func (s *Server) jobFiles(groups []string) []*jobFile {
	return s.layoutFiles(groups, func(i int, bare, withBrowser bool) *object {
		if bare {
			return s.objects.bareJSON(groups[0], i, s.opts.ArchiveSize)
		}
		return s.objects.dataZip(groups, i, s.opts.ArchiveSize, s.opts.EntrySize, withBrowser)
	})
}

// activityFiles lays out the files of a job with a time filter: the same files as jobFiles, with data
// files holding only the activity of [from, to] (see activity.go).
func (s *Server) activityFiles(groups []string, from, to time.Time) []*jobFile {
	perDay := s.bytesPerDay()
	return s.layoutFiles(groups, func(i int, bare, withBrowser bool) *object {
		if bare {
			return s.objects.activityJSON(groups[0], i, from, to, perDay)
		}
		return s.objects.activityZip(groups, i, from, to, perDay, withBrowser)
	})
}

// layoutFiles lays out the URLsPerJob files of a job and starts hashing them in the background, so
// checksums are usually ready when the job completes. Files 0..N-2 hold data (a bare JSON file for a
// bare resource, a zip otherwise), built by data; the last holds the browser files. A job of one file
// has only the data file, with the browser files in it (withBrowser; a bare JSON file has none).
func (s *Server) layoutFiles(groups []string, data func(i int, bare, withBrowser bool) *object) []*jobFile {
	n := s.opts.URLsPerJob
	bare := len(groups) == 1 && s.bare[groups[0]]
	ext := "zip"
	if bare {
		ext = "json"
	}
	var files []*jobFile
	add := func(name string, o *object) {
		files = append(files, &jobFile{index: len(files), name: name, obj: o})
	}
	for i := range max(n-1, 1) {
		add(fmt.Sprintf("%s-%03d.%s", fileSlug(groups), i, ext), data(i, bare, n == 1))
	}
	if n > 1 {
		add(fmt.Sprintf("%s-%03d.zip", fileSlug(groups), n-1), s.objects.browserZip(groups))
	}
	for _, f := range files {
		s.objects.prepareAsync(f.obj)
	}
	return files
}

// fileSlug names a job's files after its resources (the first one and a count when many).
func fileSlug(groups []string) string {
	name := "portability-" + strings.ReplaceAll(groups[0], ".", "-")
	if len(groups) > 1 {
		name += fmt.Sprintf("-and-%d-more", len(groups)-1)
	}
	return name
}

// countsLocked reports whether j still counts against the user's quota for its resources.
func (j *job) counts(u *user, now time.Time) bool {
	return j.epoch == u.epoch && j.state(now) != StateCancelled
}

// exhaustionLocked checks the one-time and 24 h rules for a new job of u on groups.
func (s *Server) exhaustionLocked(u *user, groups []string, now time.Time) *apiError {
	var oneTimeIDs []string
	var timeIDs []string
	var until time.Time
	for _, r := range groups {
		for _, j := range s.jobSeq {
			if j.user != u.name || !j.counts(u, now) || !slices.Contains(j.resources, r) {
				continue
			}
			if u.access[r] == accessOneTime {
				oneTimeIDs = appendUnique(oneTimeIDs, j.id)
				continue
			}
			if end := j.createdAt.Add(timeBasedWindow); now.Before(end) {
				timeIDs = appendUnique(timeIDs, j.id)
				if end.After(until) {
					until = end
				}
			}
		}
	}
	if len(oneTimeIDs) > 0 {
		return &apiError{code: 429, status: "RESOURCE_EXHAUSTED", reason: "RESOURCE_EXHAUSTED_ONE_TIME",
			message:  "Requested resources have already been exported with one-time access. Reset the authorization to export them again.",
			metadata: map[string]string{"previous_job_ids": strings.Join(oneTimeIDs, ",")}}
	}
	if len(timeIDs) > 0 {
		if s.opts.TimeBasedFailedPrecondition {
			return errFailedPrecondition("", "Requested resources can only be exported once every 24 hours with time-based access.")
		}
		return &apiError{code: 429, status: "RESOURCE_EXHAUSTED", reason: "RESOURCE_EXHAUSTED_TIME_BASED",
			message: "Requested resources can only be exported once every 24 hours with time-based access.",
			metadata: map[string]string{
				"previous_job_ids":      strings.Join(timeIDs, ","),
				"timestamp_after_24hrs": until.UTC().Format(time.RFC3339),
			}}
	}
	return nil
}

func appendUnique(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}
