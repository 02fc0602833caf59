// Package pipeline is the deployable source root: the Go buildpack builds only the package at the root
// of the source, so this package blank-imports every step; each registers its entry points with the
// functions framework in init(), and each Cloud Function picks one with its entry point.
package pipeline

import (
	_ "github.com/portability-pipeline/pipeline/functions/initiate"
	_ "github.com/portability-pipeline/pipeline/functions/oauthcallback"
	_ "github.com/portability-pipeline/pipeline/functions/poll"
	_ "github.com/portability-pipeline/pipeline/functions/reconcile"
	_ "github.com/portability-pipeline/pipeline/functions/reset"
	_ "github.com/portability-pipeline/pipeline/functions/transfer"
	_ "github.com/portability-pipeline/pipeline/functions/webhook"
)
