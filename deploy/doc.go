// Package deploy holds no code: it is the home of the deployment artifacts
// (the Salesforce CDC source and SObject sink connectors' configurations in
// connect/, the Kubernetes
// kustomization in k8s/, the Grafana dashboard in grafana/) and of the tests
// that check them against the service they deploy, so that `go test ./...`
// fails when a topic, a schema field, a metric name or a setting drifts from
// what the artifacts say.
//
// What each test guards:
//   - connector_test.go: every field of the LeadScoreSfdc record is a Salesforce
//     Lead field documented in docs/OPERATIONS.md or listed in
//     salesforce.ignore.fields; no field is nullable or nested; the topics are
//     the service's defaults; secrets come from a config provider.
//   - cdc_source_test.go: the Salesforce CDC Source connector writes the
//     LeadChangeEvent channel into the scorer's input topic, with one task and
//     one partition, in an encoding the scorer's reader reads (a record made
//     as its converter would is read back), secrets from a config provider.
//   - dockerfile_test.go: the image is a multi-stage, static (CGO_ENABLED=0)
//     build of ./cmd/leadscorer alone (not leadscorer-dev) on a distroless
//     nonroot base that carries models/.
//   - k8s_test.go: the rendered example overlay runs non-root on a read-only
//     root filesystem with resources, probes, graceful termination longer than
//     batch_timeout, the registry and models mounted, a Service, PodMonitor,
//     PodDisruptionBudget and a KEDA ScaledObject capped at the partition count.
//   - grafana_test.go: every metric the dashboard queries is one the service
//     documents in the README, or a validation gauge.
package deploy
