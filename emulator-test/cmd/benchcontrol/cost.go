package main

// CostLine is one item of the cost per 1,000 users.
type CostLine struct {
	Item     string  `json:"item"`
	Quantity float64 `json:"quantityPer1000Users"`
	Price    string  `json:"price"`
	USD      float64 `json:"usd"`
	Source   string  `json:"source"`
}

// List prices in USD as known to the author (Google Cloud's published list prices for a single region
// such as us-central1, tier 1), checked against the run date printed with them. Free tiers (Firestore's
// 50k reads / 20k writes / 20k deletes a day, Pub/Sub's first 10 GiB, Cloud Tasks' first million
// operations and Cloud Run's first 2 million requests a month) are ignored: this is the marginal cost.
const (
	firestoreReadPer100k   = 0.03
	firestoreWritePer100k  = 0.09
	firestoreDeletePer100k = 0.01
	pubsubPerTiB           = 40.0
	pubsubMinBytes         = 1000 // each publish and each delivery is billed at least 1,000 bytes
	tasksPerMillion        = 0.40
	runRequestsPerMillion  = 0.40
	runVCPUSecond          = 0.000024
	runGiBSecond           = 0.0000025
	gcsClassAPer1000       = 0.005
	gcsClassBPer1000       = 0.0004

	// Assumed billed time of one control-plane invocation on Cloud Run functions (1 vCPU, 256 MiB):
	// billing rounds up to 100 ms, and these handlers make a few API calls each.
	assumedSeconds = 0.1
	assumedGiB     = 0.25

	firestorePricing = "https://cloud.google.com/firestore/pricing"
	pubsubPricing    = "https://cloud.google.com/pubsub/pricing"
	tasksPricing     = "https://cloud.google.com/tasks/pricing"
	runPricing       = "https://cloud.google.com/run/pricing"
	gcsPricing       = "https://cloud.google.com/storage/pricing"
)

func costs(rep *Report) ([]CostLine, float64) {
	k := 1000 / float64(rep.Users)
	var pushes, refused int64
	for _, p := range rep.Pushes {
		pushes += p.Pushes
		refused += p.Refused
	}
	publishes := pushes - refused // a refused push is delivered again: one publish, several deliveries
	var inv int64
	for _, v := range rep.Invocations {
		inv += v
	}
	jobs := float64(rep.APICalls["initiate"])
	lines := []CostLine{
		{"Firestore document reads", float64(rep.Firestore.Reads) * k, "$0.03 / 100k", 0, firestorePricing},
		{"Firestore document writes", float64(rep.Firestore.Writes) * k, "$0.09 / 100k", 0, firestorePricing},
		{"Firestore document deletes", float64(rep.Firestore.Deletes) * k, "$0.01 / 100k", 0, firestorePricing},
		{"Pub/Sub publishes+deliveries (KB)", float64(publishes+pushes) * k, "$40 / TiB, 1 KB minimum each", 0, pubsubPricing},
		{"Cloud Tasks operations", float64(rep.Tasks.Created+rep.Tasks.Attempts+rep.Tasks.Deleted) * k, "$0.40 / million", 0, tasksPricing},
		{"function requests", float64(inv) * k, "$0.40 / million", 0, runPricing},
		{"function compute (assumed 100 ms)", float64(inv) * k, "0.1 s x 1 vCPU + 0.25 GiB", 0, runPricing},
		{"Cloud Storage class A (estimated)", 2 * jobs * k, "$0.005 / 1,000", 0, gcsPricing},
		{"Cloud Storage class B (estimated)", 2 * jobs * k, "$0.0004 / 1,000", 0, gcsPricing},
	}
	usd := []float64{
		lines[0].Quantity * firestoreReadPer100k / 1e5,
		lines[1].Quantity * firestoreWritePer100k / 1e5,
		lines[2].Quantity * firestoreDeletePer100k / 1e5,
		lines[3].Quantity * pubsubMinBytes / (1 << 40) * pubsubPerTiB,
		lines[4].Quantity * tasksPerMillion / 1e6,
		lines[5].Quantity * runRequestsPerMillion / 1e6,
		lines[6].Quantity * assumedSeconds * (runVCPUSecond + assumedGiB*runGiBSecond),
		lines[7].Quantity * gcsClassAPer1000 / 1000,
		lines[8].Quantity * gcsClassBPer1000 / 1000,
	}
	var total float64
	for i := range lines {
		lines[i].USD = usd[i]
		total += usd[i]
	}
	return lines, total
}
