package deploy

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/leadscorer/leadscorer/config"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/leadscorer/leadscorer/topics"
)

// render runs kustomize on dir as `kubectl kustomize --load-restrictor
// LoadRestrictionsNone dir` would, and returns each resource as JSON.
func render(t *testing.T, dir string) []json.RawMessage {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	// The models ConfigMap is generated from the repository's models/,
	// outside the kustomization root.
	opts.LoadRestrictions = types.LoadRestrictionsNone
	rm, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []json.RawMessage
	for _, r := range rm.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// The parts of each kind the checks read.
type (
	meta struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	}
	selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	}
	probe struct {
		HTTPGet *struct {
			Path string          `json:"path"`
			Port json.RawMessage `json:"port"`
		} `json:"httpGet"`
	}
	envVar struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct{ Name, Key string } `json:"secretKeyRef"`
		} `json:"valueFrom"`
	}
	container struct {
		Name  string   `json:"name"`
		Image string   `json:"image"`
		Args  []string `json:"args"`
		Ports []struct {
			Name          string `json:"name"`
			ContainerPort int    `json:"containerPort"`
		} `json:"ports"`
		Env     []envVar `json:"env"`
		EnvFrom []struct {
			ConfigMapRef *struct{ Name string } `json:"configMapRef"`
		} `json:"envFrom"`
		Resources struct {
			Requests map[string]string `json:"requests"`
			Limits   map[string]string `json:"limits"`
		} `json:"resources"`
		SecurityContext *struct {
			ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
			Capabilities             *struct {
				Drop []string `json:"drop"`
			} `json:"capabilities"`
		} `json:"securityContext"`
		LivenessProbe  *probe `json:"livenessProbe"`
		ReadinessProbe *probe `json:"readinessProbe"`
		VolumeMounts   []struct {
			Name      string `json:"name"`
			MountPath string `json:"mountPath"`
		} `json:"volumeMounts"`
	}
	deployment struct {
		Metadata meta `json:"metadata"`
		Spec     struct {
			Replicas *int     `json:"replicas"`
			Selector selector `json:"selector"`
			Template struct {
				Metadata meta `json:"metadata"`
				Spec     struct {
					TerminationGracePeriodSeconds *int `json:"terminationGracePeriodSeconds"`
					SecurityContext               *struct {
						RunAsNonRoot *bool `json:"runAsNonRoot"`
						RunAsUser    *int  `json:"runAsUser"`
					} `json:"securityContext"`
					Containers []container `json:"containers"`
					Volumes    []struct {
						Name      string `json:"name"`
						ConfigMap *struct {
							Name  string `json:"name"`
							Items []struct{ Key, Path string }
						} `json:"configMap"`
					} `json:"volumes"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	configMap struct {
		Metadata   meta              `json:"metadata"`
		Data       map[string]string `json:"data"`
		BinaryData map[string][]byte `json:"binaryData"`
	}
	service struct {
		Metadata meta `json:"metadata"`
		Spec     struct {
			Selector map[string]string `json:"selector"`
			Ports    []struct {
				Name       string          `json:"name"`
				Port       int             `json:"port"`
				TargetPort json.RawMessage `json:"targetPort"`
			} `json:"ports"`
		} `json:"spec"`
	}
	podMonitor struct {
		Metadata meta `json:"metadata"`
		Spec     struct {
			Selector  selector `json:"selector"`
			Endpoints []struct {
				Port string `json:"port"`
				Path string `json:"path"`
			} `json:"podMetricsEndpoints"`
		} `json:"spec"`
	}
	pdb struct {
		Metadata meta `json:"metadata"`
		Spec     struct {
			Selector       selector        `json:"selector"`
			MinAvailable   json.RawMessage `json:"minAvailable"`
			MaxUnavailable json.RawMessage `json:"maxUnavailable"`
		} `json:"spec"`
	}
	scaledObject struct {
		Metadata meta `json:"metadata"`
		Spec     struct {
			ScaleTargetRef struct {
				Kind string `json:"kind"`
				Name string `json:"name"`
			} `json:"scaleTargetRef"`
			MinReplicaCount *int `json:"minReplicaCount"`
			MaxReplicaCount *int `json:"maxReplicaCount"`
			Triggers        []struct {
				Type     string            `json:"type"`
				Metadata map[string]string `json:"metadata"`
			} `json:"triggers"`
		} `json:"spec"`
	}
	kafkaTopic struct {
		Metadata meta `json:"metadata"`
		Spec     struct {
			TopicName  string            `json:"topicName"`
			Partitions int               `json:"partitions"`
			Replicas   int               `json:"replicas"`
			Config     map[string]string `json:"config"`
		} `json:"spec"`
	}
)

// manifests is one rendering of the example overlay plus the topics.
type manifests struct {
	deployments   []deployment
	configMaps    []configMap
	services      []service
	podMonitors   []podMonitor
	pdbs          []pdb
	scaledObjects []scaledObject
	topics        []kafkaTopic
}

func decode(t *testing.T, docs ...[]json.RawMessage) *manifests {
	t.Helper()
	m := &manifests{}
	for _, list := range docs {
		for _, raw := range list {
			var head struct{ Kind string }
			if err := json.Unmarshal(raw, &head); err != nil {
				t.Fatal(err)
			}
			var err error
			switch head.Kind {
			case "Deployment":
				m.deployments = append(m.deployments, deployment{})
				err = json.Unmarshal(raw, &m.deployments[len(m.deployments)-1])
			case "ConfigMap":
				m.configMaps = append(m.configMaps, configMap{})
				err = json.Unmarshal(raw, &m.configMaps[len(m.configMaps)-1])
			case "Service":
				m.services = append(m.services, service{})
				err = json.Unmarshal(raw, &m.services[len(m.services)-1])
			case "PodMonitor":
				m.podMonitors = append(m.podMonitors, podMonitor{})
				err = json.Unmarshal(raw, &m.podMonitors[len(m.podMonitors)-1])
			case "PodDisruptionBudget":
				m.pdbs = append(m.pdbs, pdb{})
				err = json.Unmarshal(raw, &m.pdbs[len(m.pdbs)-1])
			case "ScaledObject":
				m.scaledObjects = append(m.scaledObjects, scaledObject{})
				err = json.Unmarshal(raw, &m.scaledObjects[len(m.scaledObjects)-1])
			case "KafkaTopic":
				m.topics = append(m.topics, kafkaTopic{})
				err = json.Unmarshal(raw, &m.topics[len(m.topics)-1])
			}
			if err != nil {
				t.Fatalf("%s: %v", head.Kind, err)
			}
		}
	}
	return m
}

// matches reports whether a selector selects pods labelled labels.
func matches(sel map[string]string, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// effectiveEnv is the scorer's LEADSCORER_* settings as the pod sees them:
// envFrom ConfigMaps, then env (which wins).
func (m *manifests) effectiveEnv(c *container) (map[string]string, []error) {
	env := map[string]string{}
	var errs []error
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		cm := m.configMap(ef.ConfigMapRef.Name)
		if cm == nil {
			errs = append(errs, fmt.Errorf("envFrom names ConfigMap %s, which is not rendered", ef.ConfigMapRef.Name))
			continue
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env, errs
}

func (m *manifests) configMap(name string) *configMap {
	for i := range m.configMaps {
		if m.configMaps[i].Metadata.Name == name {
			return &m.configMaps[i]
		}
	}
	return nil
}

// setting returns the value the scorer runs with: the environment, else the
// service's default.
func setting(env map[string]string, name string) string {
	for _, k := range configKeys() {
		if k.name == name {
			if v, ok := env[k.env]; ok {
				return v
			}
			return k.def
		}
	}
	panic("no setting " + name)
}

type keyInfo struct{ name, env, def string }

// configKeys lists the settings of `leadscorer run`.
func configKeys() []keyInfo {
	var out []keyInfo
	for _, k := range config.Keys {
		out = append(out, keyInfo{name: k.Name, env: k.Env(), def: k.Default})
	}
	return out
}

// validatorName names the validator's Deployment and PodMonitor.
const validatorName = "leadscorer-validator"

// splitValidator returns the manifests without the validator's Deployment
// and PodMonitor, and those two apart.
func splitValidator(m *manifests) (scorer, validator *manifests) {
	sc, v := *m, &manifests{}
	sc.deployments, sc.podMonitors = nil, nil
	for _, d := range m.deployments {
		if d.Metadata.Name == validatorName {
			v.deployments = append(v.deployments, d)
		} else {
			sc.deployments = append(sc.deployments, d)
		}
	}
	for _, pm := range m.podMonitors {
		if pm.Metadata.Name == validatorName {
			v.podMonitors = append(v.podMonitors, pm)
		} else {
			sc.podMonitors = append(sc.podMonitors, pm)
		}
	}
	return &sc, v
}

// checkValidator checks the validator: one replica of `leadscorer
// validate`, as locked down as the scorer, with the registry mounted and
// its /metrics scraped.
func checkValidator(m, v *manifests) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(v.deployments) != 1 || len(v.deployments[0].Spec.Template.Spec.Containers) != 1 {
		return append(errs, fmt.Errorf("want one Deployment %s with one container", validatorName))
	}
	d := &v.deployments[0]
	pod, c := &d.Spec.Template.Spec, &d.Spec.Template.Spec.Containers[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		bad("%s must run exactly one replica", validatorName)
	}
	if !slices.Equal(c.Args, []string{"validate"}) {
		bad("%s runs %v, want [validate]", validatorName, c.Args)
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		bad("%s: pod securityContext must set runAsNonRoot: true and a non-zero runAsUser", validatorName)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		bad("%s: container securityContext must set readOnlyRootFilesystem: true", validatorName)
	}
	if c.Resources.Limits["memory"] == "" {
		bad("%s: container has no memory limit", validatorName)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		bad("%s: want a liveness probe on /healthz", validatorName)
	}
	env, envErrs := m.effectiveEnv(c)
	errs = append(errs, envErrs...)
	errs = append(errs, checkModelsVolume(m, d, c, setting(env, "registry"))...)
	if len(v.podMonitors) != 1 || !matches(v.podMonitors[0].Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
		bad("want one PodMonitor %s selecting the validator pods", validatorName)
	}
	return errs
}

// maxConfigMapBytes is Kubernetes' limit on a ConfigMap's data.
const maxConfigMapBytes = 1 << 20

// checkManifests returns every way the rendered manifests fall short of a
// safe deployment of the scorer.
func checkManifests(m *manifests) []error {
	m, validator := splitValidator(m)
	errs := checkValidator(m, validator)
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(m.deployments) != 1 {
		return append(errs, fmt.Errorf("%d Deployments, want 1", len(m.deployments)))
	}
	d := &m.deployments[0]
	pod := &d.Spec.Template.Spec
	podLabels := d.Spec.Template.Metadata.Labels
	if !matches(d.Spec.Selector.MatchLabels, podLabels) {
		bad("Deployment selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, podLabels)
	}
	if len(pod.Containers) != 1 {
		return append(errs, fmt.Errorf("%d containers, want 1", len(pod.Containers)))
	}
	c := &pod.Containers[0]
	if c.Image == "" || strings.HasSuffix(c.Image, ":dev") || !strings.Contains(c.Image, ":") {
		bad("image %q: the overlay must pin a released tag", c.Image)
	}

	// Non-root, read-only root filesystem, no privilege.
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		bad("pod securityContext must set runAsNonRoot: true and a non-zero runAsUser")
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		bad("container securityContext must set readOnlyRootFilesystem: true")
	} else {
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			bad("container securityContext must set allowPrivilegeEscalation: false")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			bad("container securityContext must drop ALL capabilities")
		}
	}

	// Resources.
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			bad("container has no %s request", r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		bad("container has no memory limit")
	}

	// Settings: every LEADSCORER_* variable is a setting; the HTTP server
	// listens beyond loopback on the port the probes and scrapes use.
	env, envErrs := m.effectiveEnv(c)
	errs = append(errs, envErrs...)
	known := map[string]bool{}
	for _, k := range configKeys() {
		known[k.env] = true
	}
	for k := range env {
		if strings.HasPrefix(k, "LEADSCORER_") && !known[k] {
			bad("env %s is not a setting of leadscorer run", k)
		}
	}
	for _, e := range c.Env {
		if e.Name == "LEADSCORER_REDIS_URL" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			bad("LEADSCORER_REDIS_URL holds credentials: it must come from a Secret (secretKeyRef)")
		}
	}
	host, port, err := net.SplitHostPort(setting(env, "http_addr"))
	if err != nil {
		bad("http_addr %q: %v", setting(env, "http_addr"), err)
	}
	if host == "" || host == "localhost" || net.ParseIP(host).IsLoopback() {
		bad("http_addr %q listens on loopback only: probes and Prometheus could not reach it (set LEADSCORER_HTTP_ADDR=0.0.0.0:PORT)", setting(env, "http_addr"))
	}
	httpPort, _ := strconv.Atoi(port)
	portOf := func(raw json.RawMessage) int {
		var n int
		if json.Unmarshal(raw, &n) == nil {
			return n
		}
		var name string
		_ = json.Unmarshal(raw, &name)
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
		return -1
	}
	for _, pr := range []struct {
		what, path string
		p          *probe
	}{{"livenessProbe", "/healthz", c.LivenessProbe}, {"readinessProbe", "/readyz", c.ReadinessProbe}} {
		switch {
		case pr.p == nil || pr.p.HTTPGet == nil:
			bad("container has no HTTP %s", pr.what)
		case pr.p.HTTPGet.Path != pr.path:
			bad("%s path %q, want %s", pr.what, pr.p.HTTPGet.Path, pr.path)
		case portOf(pr.p.HTTPGet.Port) != httpPort:
			bad("%s port %s is not the http_addr port %d", pr.what, pr.p.HTTPGet.Port, httpPort)
		}
	}

	// Graceful termination: longer than the batch may take to commit.
	shutdown, err := time.ParseDuration(setting(env, "batch_timeout"))
	if err != nil {
		bad("batch_timeout: %v", err)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= shutdown {
		bad("terminationGracePeriodSeconds must exceed batch_timeout %s, or the kubelet kills a batch mid-commit", shutdown)
	}

	// The registry and the models it names, mounted where registry points.
	errs = append(errs, checkModelsVolume(m, d, c, setting(env, "registry"))...)

	// Service and PodMonitor reach the http port of these pods.
	if len(m.services) != 1 {
		bad("%d Services, want 1", len(m.services))
	}
	for _, s := range m.services {
		if !matches(s.Spec.Selector, podLabels) {
			bad("Service %s selector %v does not select the scorer pods", s.Metadata.Name, s.Spec.Selector)
		}
		if len(s.Spec.Ports) == 0 || portOf(s.Spec.Ports[0].TargetPort) != httpPort {
			bad("Service %s does not target the http_addr port %d", s.Metadata.Name, httpPort)
		}
	}
	if len(m.podMonitors) != 1 {
		bad("%d PodMonitors, want 1", len(m.podMonitors))
	}
	for _, pm := range m.podMonitors {
		if !matches(pm.Spec.Selector.MatchLabels, podLabels) {
			bad("PodMonitor %s does not select the scorer pods", pm.Metadata.Name)
		}
		if len(pm.Spec.Endpoints) == 0 || portOf(json.RawMessage(strconv.Quote(pm.Spec.Endpoints[0].Port))) != httpPort || pm.Spec.Endpoints[0].Path != "/metrics" {
			bad("PodMonitor %s does not scrape /metrics on the http_addr port", pm.Metadata.Name)
		}
	}
	if len(m.pdbs) != 1 {
		bad("%d PodDisruptionBudgets, want 1", len(m.pdbs))
	}
	for _, p := range m.pdbs {
		if !matches(p.Spec.Selector.MatchLabels, podLabels) {
			bad("PodDisruptionBudget %s does not select the scorer pods", p.Metadata.Name)
		}
		if p.Spec.MinAvailable == nil && p.Spec.MaxUnavailable == nil {
			bad("PodDisruptionBudget %s sets neither minAvailable nor maxUnavailable", p.Metadata.Name)
		}
	}

	// KEDA: lag of the scorers' group on the input topic, at most one
	// scorer per partition.
	if len(m.scaledObjects) != 1 {
		return append(errs, fmt.Errorf("%d ScaledObjects, want 1", len(m.scaledObjects)))
	}
	so := &m.scaledObjects[0]
	if so.Spec.ScaleTargetRef.Name != d.Metadata.Name || (so.Spec.ScaleTargetRef.Kind != "" && so.Spec.ScaleTargetRef.Kind != "Deployment") {
		bad("ScaledObject scales %s %s, not the Deployment %s", so.Spec.ScaleTargetRef.Kind, so.Spec.ScaleTargetRef.Name, d.Metadata.Name)
	}
	var kafka map[string]string
	for _, tr := range so.Spec.Triggers {
		if tr.Type == "kafka" {
			kafka = tr.Metadata
		}
	}
	topicIn := setting(env, "topic_in")
	if kafka == nil {
		bad("ScaledObject has no kafka (consumer lag) trigger")
	} else {
		if kafka["topic"] != topicIn {
			bad("ScaledObject watches topic %q, the scorers read %q", kafka["topic"], topicIn)
		}
		if kafka["consumerGroup"] != setting(env, "group") {
			bad("ScaledObject watches group %q, the scorers are group %q", kafka["consumerGroup"], setting(env, "group"))
		}
		if kafka["bootstrapServers"] != setting(env, "brokers") {
			bad("ScaledObject reads lag from %q, the scorers use brokers %q", kafka["bootstrapServers"], setting(env, "brokers"))
		}
		if n, err := strconv.Atoi(kafka["lagThreshold"]); err != nil || n <= 0 {
			bad("ScaledObject lagThreshold %q is not a positive number", kafka["lagThreshold"])
		}
	}
	partitions := -1
	for _, tp := range m.topics {
		if tp.Spec.TopicName == topicIn {
			partitions = tp.Spec.Partitions
		}
	}
	switch {
	case partitions < 0:
		bad("no KafkaTopic declares the input topic %s", topicIn)
	case so.Spec.MaxReplicaCount == nil || *so.Spec.MaxReplicaCount != partitions:
		bad("ScaledObject maxReplicaCount %v is not the input topic's partition count %d", deref(so.Spec.MaxReplicaCount), partitions)
	}
	if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount < 1 || so.Spec.MaxReplicaCount == nil || *so.Spec.MinReplicaCount > *so.Spec.MaxReplicaCount {
		bad("ScaledObject minReplicaCount %v must be in 1..maxReplicaCount", deref(so.Spec.MinReplicaCount))
	}
	if d.Spec.Replicas != nil && (so.Spec.MinReplicaCount == nil || so.Spec.MaxReplicaCount == nil ||
		*d.Spec.Replicas < *so.Spec.MinReplicaCount || *d.Spec.Replicas > *so.Spec.MaxReplicaCount) {
		bad("Deployment %s starts %d replicas, outside the ScaledObject's %v..%v", d.Metadata.Name, *d.Spec.Replicas,
			deref(so.Spec.MinReplicaCount), deref(so.Spec.MaxReplicaCount))
	}
	return errs
}

func deref(p *int) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// checkModelsVolume writes the models ConfigMap out as the kubelet would
// mount it and loads the registry from there: the scorer must start with
// the mounted files, every model present with the sha256 the registry
// names.
func checkModelsVolume(m *manifests, d *deployment, c *container, registry string) []error {
	var mountPath, volume string
	for _, vm := range c.VolumeMounts {
		if strings.HasPrefix(registry, strings.TrimSuffix(vm.MountPath, "/")+"/") && len(vm.MountPath) > len(mountPath) {
			mountPath, volume = vm.MountPath, vm.Name
		}
	}
	if volume == "" {
		return []error{fmt.Errorf("registry %s is not on a mounted volume", registry)}
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name != volume {
			continue
		}
		if v.ConfigMap == nil {
			return []error{fmt.Errorf("volume %s is not a ConfigMap; only ConfigMap volumes are checked here", volume)}
		}
		cm := m.configMap(v.ConfigMap.Name)
		if cm == nil {
			return []error{fmt.Errorf("volume %s names ConfigMap %s, which is not rendered", volume, v.ConfigMap.Name)}
		}
		size := 0
		for k, s := range cm.Data {
			size += len(k) + len(s)
		}
		for k, b := range cm.BinaryData {
			size += len(k) + len(b)
		}
		if size > maxConfigMapBytes {
			return []error{fmt.Errorf("ConfigMap %s holds %d bytes, over Kubernetes' 1 MiB: serve the models from the image or another volume", cm.Metadata.Name, size)}
		}
		dir, err := os.MkdirTemp("", "leadscorer-models-")
		if err != nil {
			return []error{err}
		}
		defer os.RemoveAll(dir)
		for _, it := range v.ConfigMap.Items {
			content, ok := cm.Data[it.Key]
			if !ok {
				b, okb := cm.BinaryData[it.Key]
				if !okb {
					return []error{fmt.Errorf("volume %s maps key %s, which ConfigMap %s lacks", volume, it.Key, cm.Metadata.Name)}
				}
				content = string(b)
			}
			p := filepath.Join(dir, filepath.FromSlash(path.Clean(it.Path)))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return []error{err}
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				return []error{err}
			}
		}
		rel := strings.TrimPrefix(registry, strings.TrimSuffix(mountPath, "/")+"/")
		reg, err := scoring.LoadRegistry(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return []error{fmt.Errorf("the registry as mounted from ConfigMap %s does not load: %w", cm.Metadata.Name, err)}
		}
		want, err := scoring.LoadRegistry("../models/registry.json")
		if err != nil {
			return []error{fmt.Errorf("models/registry.json: %w", err)}
		}
		if got, w := servingNames(reg), servingNames(want); !slices.Equal(got, w) {
			return []error{fmt.Errorf("the mounted registry serves %v, models/registry.json serves %v", got, w)}
		}
		return nil
	}
	return []error{fmt.Errorf("volume %s is mounted but not declared", volume)}
}

func servingNames(r *scoring.Registry) []string {
	var out []string
	for _, v := range r.Serving() {
		out = append(out, v.Name+"="+v.Role+"@"+v.SHA256)
	}
	return out
}

// checkTopics compares the KafkaTopic resources with the topics
// declaration (package topics, what `leadscorer topics apply` creates):
// the same topics, each with the declared partitions, replicas and
// settings; and with the service's limits.
func checkTopics(m *manifests, connectorTasks int) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	byName := map[string]kafkaTopic{}
	for _, tp := range m.topics {
		byName[tp.Spec.TopicName] = tp
	}
	env := map[string]string{}
	cfg := config.Default()
	for _, want := range topics.Declared(cfg, topics.DefaultReplicationFactor) {
		tp, ok := byName[want.Name]
		if !ok {
			bad("no KafkaTopic for the declared topic %s (%s)", want.Name, want.Key)
			continue
		}
		delete(byName, want.Name)
		if tp.Spec.Partitions != int(want.Partitions) {
			bad("KafkaTopic %s: %d partitions, the declaration %d", want.Name, tp.Spec.Partitions, want.Partitions)
		}
		if tp.Spec.Replicas != int(want.ReplicationFactor) {
			bad("KafkaTopic %s: replicas %d, the declaration %d", want.Name, tp.Spec.Replicas, want.ReplicationFactor)
		}
		for _, k := range topics.Settings {
			if tp.Spec.Config[k] != want.Configs[k] {
				bad("KafkaTopic %s: %s %q, the declaration %q", want.Name, k, tp.Spec.Config[k], want.Configs[k])
			}
		}
		if tp.Spec.Replicas < 3 || tp.Spec.Config["min.insync.replicas"] != "2" {
			bad("topic %s: replicas %d, min.insync.replicas %q; want 3 and 2 so that a transaction survives a broker", want.Name, tp.Spec.Replicas, tp.Spec.Config["min.insync.replicas"])
		}
	}
	for name := range byName {
		bad("KafkaTopic %s is not a topic of the service", name)
	}
	// Every topic the scorer writes takes its largest batch: a smaller
	// max.message.bytes refuses a batch, and the transaction with it, every
	// time it is retried. The DLQ also takes a record cut to
	// max_record_bytes plus its reason headers.
	for _, name := range []string{setting(env, "topic_sfdc"), setting(env, "topic_shadow"), setting(env, "topic_dlq"), cfg.TopicOutcomes, setting(env, "topic_refresh")} {
		tp, ok := byName0(m, name)
		if !ok {
			continue
		}
		limit, err := strconv.Atoi(tp.Spec.Config["max.message.bytes"])
		if err != nil || limit < topics.ProducerBatchMaxBytes {
			bad("topic %s: max.message.bytes %q is below the scorer's producer batch (%d bytes): a batch of several records is refused, and its transaction can never commit", name, tp.Spec.Config["max.message.bytes"], topics.ProducerBatchMaxBytes)
		}
		if name == setting(env, "topic_dlq") {
			maxRecord, _ := strconv.Atoi(setting(env, "max_record_bytes"))
			// A dead letter is the record cut to max_record_bytes plus
			// headers of at most a few KiB (the message is capped at 1 KiB).
			if err != nil || limit < maxRecord+16<<10 {
				bad("DLQ topic max.message.bytes %q must exceed max_record_bytes %d plus the reason headers, or an oversized record blocks its partition", tp.Spec.Config["max.message.bytes"], maxRecord)
			}
		}
	}
	if sink, ok := topicPartitions(m, setting(env, "topic_sfdc")); ok && connectorTasks > sink {
		bad("the connector runs %d tasks on a sink topic of %d partitions", connectorTasks, sink)
	}
	return errs
}

func byName0(m *manifests, name string) (kafkaTopic, bool) {
	for _, tp := range m.topics {
		if tp.Spec.TopicName == name {
			return tp, true
		}
	}
	return kafkaTopic{}, false
}

func topicPartitions(m *manifests, name string) (int, bool) {
	for _, tp := range m.topics {
		if tp.Spec.TopicName == name {
			return tp.Spec.Partitions, true
		}
	}
	return 0, false
}

// renderedExample is the example overlay and the topics, rendered once.
func renderedExample(t *testing.T) [][]json.RawMessage {
	t.Helper()
	return [][]json.RawMessage{render(t, "k8s/overlays/example"), render(t, "k8s/topics")}
}

func TestKubernetesExampleOverlayIsSafeToRun(t *testing.T) {
	docs := renderedExample(t)
	m := decode(t, docs...)
	for _, err := range checkManifests(m) {
		t.Error(err)
	}
	tasks, err := strconv.Atoi(loadConnector(t, "connect/salesforce-sobject-sink.json").Config["tasks.max"])
	if err != nil {
		t.Fatalf("connector tasks.max: %v", err)
	}
	for _, err := range checkTopics(m, tasks) {
		t.Error(err)
	}
	for _, d := range m.deployments {
		if d.Metadata.Namespace == "" {
			t.Errorf("Deployment %s has no namespace: the overlay must set one", d.Metadata.Name)
		}
	}
}

// TestKubernetesCheckCatchesDrift breaks the rendered manifests one way at
// a time; each must be reported.
func TestKubernetesCheckCatchesDrift(t *testing.T) {
	docs := renderedExample(t)
	cases := []struct {
		name   string
		break_ func(m *manifests)
		want   string
	}{
		{"a root pod is refused", func(m *manifests) {
			f := false
			m.deployments[0].Spec.Template.Spec.SecurityContext.RunAsNonRoot = &f
		}, "runAsNonRoot"},
		{"a writable root filesystem is refused", func(m *manifests) {
			f := false
			m.deployments[0].Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = &f
		}, "readOnlyRootFilesystem"},
		{"a container without a memory limit is refused", func(m *manifests) {
			delete(m.deployments[0].Spec.Template.Spec.Containers[0].Resources.Limits, "memory")
		}, "memory limit"},
		{"the loopback default http_addr is refused", func(m *manifests) {
			c := &m.deployments[0].Spec.Template.Spec.Containers[0]
			c.Env = slices.DeleteFunc(c.Env, func(e envVar) bool { return e.Name == "LEADSCORER_HTTP_ADDR" })
		}, "loopback"},
		{"a readiness probe on /healthz is refused", func(m *manifests) {
			m.deployments[0].Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path = "/healthz"
		}, "readinessProbe path"},
		{"a grace period shorter than batch_timeout is refused", func(m *manifests) {
			g := 30
			m.deployments[0].Spec.Template.Spec.TerminationGracePeriodSeconds = &g
		}, "terminationGracePeriodSeconds"},
		{"a model missing from the volume is refused", func(m *manifests) {
			v := m.deployments[0].Spec.Template.Spec.Volumes[0].ConfigMap
			v.Items = v.Items[:len(v.Items)-1]
		}, "does not load"},
		{"an unknown setting is refused", func(m *manifests) {
			c := &m.deployments[0].Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, envVar{Name: "LEADSCORER_BATCH_SIZE", Value: "10"})
		}, "not a setting"},
		{"a second validator is refused", func(m *manifests) {
			for i := range m.deployments {
				if m.deployments[i].Metadata.Name == validatorName {
					n := 2
					m.deployments[i].Spec.Replicas = &n
				}
			}
		}, "exactly one replica"},
		{"more scorers than partitions is refused", func(m *manifests) {
			n := 24
			m.scaledObjects[0].Spec.MaxReplicaCount = &n
		}, "partition count"},
		{"scaling on another group's lag is refused", func(m *manifests) {
			m.scaledObjects[0].Spec.Triggers[0].Metadata["consumerGroup"] = "someone-else"
		}, "watches group"},
		{"a PodMonitor selecting other pods is refused", func(m *manifests) {
			m.podMonitors[0].Spec.Selector.MatchLabels = map[string]string{"app": "other"}
		}, "PodMonitor"},
		{"a PDB selecting other pods is refused", func(m *manifests) {
			m.pdbs[0].Spec.Selector.MatchLabels = map[string]string{"app": "other"}
		}, "PodDisruptionBudget"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := decode(t, docs...)
			tc.break_(m)
			errs := checkManifests(m)
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.want) }) {
				t.Errorf("no error containing %q; got %v", tc.want, errs)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		break_ func(m *manifests)
		want   string
	}{
		{"a KafkaTopic with other partitions than declared is refused", func(m *manifests) { m.topics[1].Spec.Partitions = 6 }, "6 partitions, the declaration 12"},
		{"a KafkaTopic with another retention is refused", func(m *manifests) { m.topics[2].Spec.Config["retention.ms"] = "1" }, `retention.ms "1", the declaration`},
		{"a declared topic without its KafkaTopic is refused", func(m *manifests) { m.topics = m.topics[:len(m.topics)-1] }, "no KafkaTopic for the declared topic leads.dlq.v1.replayed"},
		{"a DLQ below the producer's batch is refused", func(m *manifests) {
			for i := range m.topics {
				if m.topics[i].Spec.TopicName == "leads.dlq.v1" {
					m.topics[i].Spec.Config["max.message.bytes"] = "393216"
				}
			}
		}, "below the scorer's producer batch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := decode(t, docs...)
			tc.break_(m)
			if errs := checkTopics(m, 1); !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.want) }) {
				t.Errorf("no error containing %q; got %v", tc.want, errs)
			}
		})
	}
	t.Run("a DLQ topic smaller than max_record_bytes is refused", func(t *testing.T) {
		m := decode(t, docs...)
		for i := range m.topics {
			m.topics[i].Spec.Config["max.message.bytes"] = "262144"
		}
		if errs := checkTopics(m, 1); !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), "max.message.bytes") }) {
			t.Errorf("not refused: %v", errs)
		}
	})
}
