package config_test

// Tests of the deploy/ directory: its files are never built or applied in
// the development environment (no Docker engine, no cluster), so these
// tests are what keeps them honest. They parse every YAML and JSON file,
// load the Kubernetes ConfigMap's config.yaml with config.Load using the
// environment the Deployment gives the pod, load the Compose environment
// the same way, and check that the dashboard and the alerting rules name
// only metrics the daemon exports.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ossjobwatch/ossjobwatch/config"
)

// deployDir is the repository's deploy directory, seen from this package.
const deployDir = "../deploy"

var deployNeeds = config.Needs{Database: true, NATS: true, Targets: true}

// readDeploy reads a file under deploy/.
func readDeploy(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("read deploy/%s: %v", rel, err)
	}
	return data
}

// yamlDocs decodes every document of a YAML stream into a fresh T.
func yamlDocs[T any](t *testing.T, name string, data []byte) []T {
	t.Helper()
	var docs []T
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc T
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", name, len(docs)+1, err)
		}
		docs = append(docs, doc)
	}
}

// yamlDoc decodes a file that must hold exactly one document.
func yamlDoc[T any](t *testing.T, rel string) T {
	t.Helper()
	docs := yamlDocs[T](t, "deploy/"+rel, readDeploy(t, rel))
	if len(docs) != 1 {
		t.Fatalf("deploy/%s: %d YAML documents, want 1", rel, len(docs))
	}
	return docs[0]
}

func TestDeployYAMLParses(t *testing.T) {
	t.Parallel()
	var files []string
	err := filepath.WalkDir(deployDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(p); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			rel, _ := filepath.Rel(deployDir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk deploy: %v", err)
	}
	for _, want := range []string{
		"docker-compose.yml", "prometheus-rules.yaml",
		"kubernetes/kustomization.yaml", "kubernetes/namespace.yaml", "kubernetes/serviceaccount.yaml",
		"kubernetes/configmap.yaml", "kubernetes/secret.yaml", "kubernetes/deployment.yaml",
		"kubernetes/service.yaml", "kubernetes/podmonitor.yaml", "kubernetes/pdb.yaml",
	} {
		if !slices.Contains(files, want) {
			t.Errorf("deploy/%s is missing (found %v)", want, files)
		}
	}
	for _, f := range files {
		// yaml.v3 rejects duplicate keys, bad indentation and tabs.
		docs := yamlDocs[any](t, "deploy/"+f, readDeploy(t, f))
		if len(docs) == 0 {
			t.Errorf("deploy/%s: no YAML document", f)
		}
		for i, doc := range docs {
			if _, ok := doc.(map[string]any); !ok {
				t.Errorf("deploy/%s: document %d is a %T, want a mapping", f, i+1, doc)
			}
		}
	}
}

// k8sObject is the part of a Kubernetes object every manifest has.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
}

func TestDeployKustomization(t *testing.T) {
	t.Parallel()
	k := yamlDoc[struct {
		Kind      string   `yaml:"kind"`
		Namespace string   `yaml:"namespace"`
		Resources []string `yaml:"resources"`
	}](t, "kubernetes/kustomization.yaml")
	if k.Kind != "Kustomization" || k.Namespace != "ossjobwatch" {
		t.Errorf("kustomization: kind %q namespace %q", k.Kind, k.Namespace)
	}
	entries, err := os.ReadDir(filepath.Join(deployDir, "kubernetes"))
	if err != nil {
		t.Fatal(err)
	}
	optional := map[string]bool{"podmonitor.yaml": true} // needs the Prometheus Operator's CRDs
	for _, e := range entries {
		name := e.Name()
		if name == "kustomization.yaml" || filepath.Ext(name) != ".yaml" {
			continue
		}
		if !slices.Contains(k.Resources, name) && !optional[name] {
			t.Errorf("kubernetes/%s is not in kustomization.yaml's resources", name)
		}
		obj := yamlDoc[k8sObject](t, "kubernetes/"+name)
		if obj.APIVersion == "" || obj.Kind == "" || obj.Metadata.Name == "" {
			t.Errorf("kubernetes/%s: apiVersion %q kind %q name %q", name, obj.APIVersion, obj.Kind, obj.Metadata.Name)
		}
		if ns := obj.Metadata.Namespace; obj.Kind != "Namespace" && ns != k.Namespace {
			t.Errorf("kubernetes/%s: namespace %q, want %q", name, ns, k.Namespace)
		}
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(deployDir, "kubernetes", r)); err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", r, err)
		}
	}
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type securityContext struct {
	RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
	RunAsUser                *int  `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	Capabilities             struct {
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
	SeccompProfile struct {
		Type string `yaml:"type"`
	} `yaml:"seccompProfile"`
}

type deployment struct {
	k8sObject `yaml:",inline"`
	Spec      struct {
		Replicas int `yaml:"replicas"`
		Strategy struct {
			Type          string `yaml:"type"`
			RollingUpdate struct {
				MaxUnavailable any `yaml:"maxUnavailable"`
				MaxSurge       any `yaml:"maxSurge"`
			} `yaml:"rollingUpdate"`
		} `yaml:"strategy"`
		Template struct {
			Spec struct {
				ServiceAccountName            string          `yaml:"serviceAccountName"`
				TerminationGracePeriodSeconds int             `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               securityContext `yaml:"securityContext"`
				TopologySpreadConstraints     []any           `yaml:"topologySpreadConstraints"`
				Containers                    []struct {
					Name  string   `yaml:"name"`
					Image string   `yaml:"image"`
					Args  []string `yaml:"args"`
					Ports []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					Env          []envVar `yaml:"env"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
					Resources struct {
						Requests map[string]string `yaml:"requests"`
						Limits   map[string]string `yaml:"limits"`
					} `yaml:"resources"`
					SecurityContext securityContext `yaml:"securityContext"`
					StartupProbe    *probe          `yaml:"startupProbe"`
					LivenessProbe   *probe          `yaml:"livenessProbe"`
					ReadinessProbe  *probe          `yaml:"readinessProbe"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name  string `yaml:"name"`
						Items []struct {
							Key  string `yaml:"key"`
							Path string `yaml:"path"`
						} `yaml:"items"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func TestDeployDeployment(t *testing.T) {
	t.Parallel()
	d := yamlDoc[deployment](t, "kubernetes/deployment.yaml")
	if d.Kind != "Deployment" || d.APIVersion != "apps/v1" {
		t.Fatalf("deployment.yaml: %s %s", d.APIVersion, d.Kind)
	}
	if d.Spec.Replicas != 2 {
		t.Errorf("replicas = %d, want 2", d.Spec.Replicas)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != "RollingUpdate" || fmt.Sprint(ru.MaxUnavailable) != "0" || fmt.Sprint(ru.MaxSurge) != "1" {
		t.Errorf("strategy = %+v, want RollingUpdate maxUnavailable 0 maxSurge 1", d.Spec.Strategy)
	}
	pod := d.Spec.Template.Spec
	if g := pod.TerminationGracePeriodSeconds; g <= 30 {
		t.Errorf("terminationGracePeriodSeconds = %d, want more than the daemon's 30s drain", g)
	}
	if len(pod.TopologySpreadConstraints) == 0 {
		t.Errorf("no topologySpreadConstraints: both replicas may land on one node")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if !slices.Equal(c.Args, []string{"run"}) {
		t.Errorf("args = %q, want [run]", c.Args)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || c.Ports[0].ContainerPort != 9090 {
		t.Errorf("ports = %+v, want metrics 9090", c.Ports)
	}
	for _, p := range []struct {
		name string
		p    *probe
		path string
	}{
		{"startupProbe", c.StartupProbe, "/healthz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	} {
		if p.p == nil || p.p.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe", p.name)
			continue
		}
		if p.p.HTTPGet.Path != p.path {
			t.Errorf("%s path = %q, want %q", p.name, p.p.HTTPGet.Path, p.path)
		}
		if port := fmt.Sprint(p.p.HTTPGet.Port); port != "metrics" && port != "9090" {
			t.Errorf("%s port = %q, want metrics", p.name, port)
		}
	}

	// Security: non-root at the pod level, and a locked-down container.
	psc, csc := pod.SecurityContext, c.SecurityContext
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || (csc.RunAsNonRoot != nil && !*csc.RunAsNonRoot) {
		t.Errorf("runAsNonRoot: pod %v container %v, want true", psc.RunAsNonRoot, csc.RunAsNonRoot)
	}
	for _, u := range []*int{psc.RunAsUser, csc.RunAsUser} {
		if u != nil && *u != 65532 {
			t.Errorf("runAsUser = %d, want the distroless nonroot uid 65532", *u)
		}
	}
	if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
		t.Errorf("readOnlyRootFilesystem: want true")
	}
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Errorf("allowPrivilegeEscalation: want false")
	}
	if !slices.Equal(csc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("capabilities.drop = %q, want [ALL]", csc.Capabilities.Drop)
	}
	if psc.SeccompProfile.Type != "RuntimeDefault" && csc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("seccompProfile: want RuntimeDefault")
	}
	r := c.Resources
	if r.Requests["cpu"] != "100m" || r.Requests["memory"] != "128Mi" || r.Limits["cpu"] != "1" || r.Limits["memory"] != "512Mi" {
		t.Errorf("resources = %+v", r)
	}

	// RRSA: the ServiceAccount carries the role, the namespace enables the
	// webhook.
	sa := yamlDoc[k8sObject](t, "kubernetes/serviceaccount.yaml")
	if pod.ServiceAccountName != sa.Metadata.Name {
		t.Errorf("serviceAccountName %q, but serviceaccount.yaml names %q", pod.ServiceAccountName, sa.Metadata.Name)
	}
	if sa.Metadata.Annotations["pod-identity.alibabacloud.com/role-name"] == "" {
		t.Errorf("serviceaccount.yaml: no pod-identity.alibabacloud.com/role-name annotation")
	}
	ns := yamlDoc[k8sObject](t, "kubernetes/namespace.yaml")
	if ns.Metadata.Labels["pod-identity.alibabacloud.com/injection"] != "on" {
		t.Errorf("namespace.yaml: label pod-identity.alibabacloud.com/injection = %q, want on",
			ns.Metadata.Labels["pod-identity.alibabacloud.com/injection"])
	}
}

// configEnvNames returns the environment variables config.Load reads, by
// watching it read them.
func configEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	if _, err := config.Load(func(k string) string { seen[k] = true; return "" }, config.Flags{}, config.Needs{}); err != nil {
		t.Fatalf("Load with an empty environment: %v", err)
	}
	if !seen["OSSJOBWATCH_DATABASE_URL"] || !seen["OSSJOBWATCH_CONFIG"] || len(seen) < 8 {
		t.Fatalf("config.Load read only %v", seen)
	}
	return seen
}

// checkEnvNames fails for a variable that is neither one config.Load
// reads nor one of credentials-go's ALIBABA_CLOUD_* (nor, where allowed,
// one of the Go runtime's).
func checkEnvNames(t *testing.T, where string, names []string, runtimeOK bool) {
	t.Helper()
	known := configEnvNames(t)
	for _, n := range names {
		switch {
		case known[n], strings.HasPrefix(n, "ALIBABA_CLOUD_"):
		case runtimeOK && (n == "GOMEMLIMIT" || n == "GOMAXPROCS" || n == "GOGC"):
		default:
			t.Errorf("%s: environment variable %s is not one config.Load reads (%v) nor ALIBABA_CLOUD_*", where, n, slices.Sorted(maps.Keys(known)))
		}
	}
}

func TestDeployConfigMapLoads(t *testing.T) {
	t.Parallel()
	cm := yamlDoc[struct {
		k8sObject `yaml:",inline"`
		Data      map[string]string `yaml:"data"`
	}](t, "kubernetes/configmap.yaml")
	text := cm.Data["config.yaml"]
	if cm.Kind != "ConfigMap" || text == "" {
		t.Fatalf("configmap.yaml: kind %q, no config.yaml key", cm.Kind)
	}
	secret := yamlDoc[struct {
		k8sObject  `yaml:",inline"`
		Type       string            `yaml:"type"`
		StringData map[string]string `yaml:"stringData"`
	}](t, "kubernetes/secret.yaml")
	if secret.Kind != "Secret" || secret.Type != "Opaque" {
		t.Errorf("secret.yaml: kind %q type %q", secret.Kind, secret.Type)
	}
	d := yamlDoc[deployment](t, "kubernetes/deployment.yaml")
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	// The pod's environment, secret references resolved from secret.yaml.
	env := map[string]string{}
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secret.StringData[ref.Key]
			if ref.Name != secret.Metadata.Name || !ok {
				t.Errorf("env %s: secretKeyRef %s/%s is not in secret.yaml (%s)", e.Name, ref.Name, ref.Key, secret.Metadata.Name)
			}
			env[e.Name] = v
		default:
			t.Errorf("env %s: unexpected valueFrom", e.Name)
		}
	}
	checkEnvNames(t, "deployment.yaml", names, true)

	// The file the pod reads: OSSJOBWATCH_CONFIG must be the ConfigMap's
	// config.yaml where the Deployment mounts it.
	configPath := env["OSSJOBWATCH_CONFIG"]
	if configPath == "" {
		t.Fatalf("deployment.yaml: OSSJOBWATCH_CONFIG not set")
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil || v.ConfigMap.Name != cm.Metadata.Name {
				continue
			}
			file := "config.yaml"
			for _, it := range v.ConfigMap.Items {
				if it.Key == "config.yaml" {
					file = it.Path
				}
			}
			if path.Join(m.MountPath, file) == configPath {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("OSSJOBWATCH_CONFIG=%s is not the ConfigMap %s's config.yaml as mounted", configPath, cm.Metadata.Name)
	}

	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	env["OSSJOBWATCH_CONFIG"] = file
	cfg, err := config.Load(func(k string) string { return env[k] }, config.Flags{}, deployNeeds)
	if err != nil {
		t.Fatalf("config.Load of the ConfigMap's config.yaml with the Deployment's environment:\n%v", err)
	}
	if cfg.DatabaseURL != secret.StringData["OSSJOBWATCH_DATABASE_URL"] || cfg.NATSURL != env["OSSJOBWATCH_NATS_URL"] {
		t.Errorf("database %q nats %q: the environment did not apply", cfg.DatabaseURL, cfg.NATSURL)
	}
	if cfg.HTTP.Listen != ":9090" || cfg.Log.Format != "json" {
		t.Errorf("http.listen %q log.format %q, want :9090 and json", cfg.HTTP.Listen, cfg.Log.Format)
	}
	if len(cfg.Targets) != 2 || len(cfg.EnabledTargets()) != 2 {
		t.Fatalf("targets = %+v, want two enabled", cfg.Targets)
	}
	for _, tg := range cfg.Targets {
		if tg.Credentials.Source != "oidc" || !tg.Internal || tg.Endpoint != "" {
			t.Errorf("target %s: credentials %q internal %v endpoint %q, want oidc on the internal endpoint",
				tg.Name, tg.Credentials.Source, tg.Internal, tg.Endpoint)
		}
	}
}

type composeFile struct {
	Services map[string]struct {
		Image       string         `yaml:"image"`
		Build       any            `yaml:"build"`
		Command     []string       `yaml:"command"`
		Environment map[string]any `yaml:"environment"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Ports []string `yaml:"ports"`
	} `yaml:"services"`
}

func TestDeployCompose(t *testing.T) {
	t.Parallel()
	f := yamlDoc[composeFile](t, "docker-compose.yml")
	for _, name := range []string{"postgres", "nats", "oss-simulator", "ossjobwatch"} {
		if _, ok := f.Services[name]; !ok {
			t.Fatalf("docker-compose.yml: no service %s", name)
		}
	}
	daemon := f.Services["ossjobwatch"]
	if !slices.Equal(daemon.Command, []string{"run"}) || daemon.Build == nil {
		t.Errorf("ossjobwatch: command %q build %v, want [run] built from the Dockerfile", daemon.Command, daemon.Build)
	}
	if !slices.Contains(daemon.Ports, "9090:9090") {
		t.Errorf("ossjobwatch: ports %q, want 9090 published", daemon.Ports)
	}
	for _, dep := range []string{"postgres", "nats"} {
		if daemon.DependsOn[dep].Condition != "service_healthy" {
			t.Errorf("ossjobwatch: depends_on %s condition %q, want service_healthy", dep, daemon.DependsOn[dep].Condition)
		}
		if hc := f.Services[dep].Healthcheck; hc == nil || len(hc.Test) == 0 {
			t.Errorf("%s: no healthcheck, but ossjobwatch waits for it to be healthy", dep)
		}
	}

	// Every service that runs an ossjobwatch verb other than simulate gets
	// an environment config.Load understands and accepts.
	for name, s := range f.Services {
		if s.Image != daemon.Image || len(s.Command) == 0 || s.Command[0] == "simulate" {
			continue
		}
		env := map[string]string{}
		var names []string
		for k, v := range s.Environment {
			env[k] = fmt.Sprint(v)
			names = append(names, k)
		}
		checkEnvNames(t, "docker-compose.yml service "+name, names, false)
		cfg, err := config.Load(func(k string) string { return env[k] }, config.Flags{}, deployNeeds)
		if err != nil {
			t.Errorf("docker-compose.yml service %s: config.Load: %v", name, err)
			continue
		}
		// The URLs name services of this file, on the ports they listen on.
		for _, u := range []struct{ env, service, port string }{
			{"OSSJOBWATCH_DATABASE_URL", "postgres", "5432"},
			{"OSSJOBWATCH_NATS_URL", "nats", "4222"},
			{"OSSJOBWATCH_ENDPOINT", "oss-simulator", "9000"},
		} {
			parsed, err := url.Parse(env[u.env])
			if err != nil || parsed.Hostname() != u.service || parsed.Port() != u.port {
				t.Errorf("service %s: %s=%q, want host %s port %s", name, u.env, env[u.env], u.service, u.port)
			}
		}
		if len(cfg.Targets) != 1 || cfg.Targets[0].Region != "cn-hangzhou" {
			t.Errorf("service %s: targets %+v", name, cfg.Targets)
		}
	}
	if f.Services["oss-simulator"].Image != daemon.Image || daemon.Image == "" {
		t.Errorf("oss-simulator runs image %q, want the daemon's %q", f.Services["oss-simulator"].Image, daemon.Image)
	}
	sim := strings.Join(f.Services["oss-simulator"].Command, " ")
	if !strings.HasPrefix(sim, "simulate ") || !strings.Contains(sim, "--listen 0.0.0.0:9000") {
		t.Errorf("oss-simulator: command %q, want simulate --listen 0.0.0.0:9000 …", sim)
	}
}
