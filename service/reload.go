package service

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/leadscorer/leadscorer/scoring"
	"github.com/prometheus/client_golang/prometheus"
)

// reloadMetrics say whether the registry on disk is the one serving.
type reloadMetrics struct {
	reloads  *prometheus.CounterVec
	failing  prometheus.Gauge
	lastLoad prometheus.Gauge
}

func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	m := &reloadMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadscorer_registry_reloads_total", Help: "Registry reloads, by result (ok, failed)."}, []string{"result"}),
		failing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leadscorer_registry_reload_failing", Help: "1 while the registry on disk fails to load and the previous one keeps serving."}),
		lastLoad: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leadscorer_registry_loaded_timestamp_seconds", Help: "When the serving registry was loaded."}),
	}
	reg.MustRegister(m.reloads, m.failing, m.lastLoad)
	m.lastLoad.SetToCurrentTime()
	return m
}

// Reload loads the registry file again and, when it is valid, makes it the
// snapshot of the next batch. An invalid registry or model is refused: the
// serving one stays, and the failure shows in the metrics and the log.
func (s *Service) Reload() error {
	reg, err := scoring.LoadRegistry(s.cfg.Registry)
	if err == nil {
		err = s.pipeline.SetRegistry(reg)
	}
	if err != nil {
		s.reload.reloads.WithLabelValues("failed").Inc()
		s.reload.failing.Set(1)
		s.log.Error("registry reload refused; the previous registry keeps serving", "err", err)
		return err
	}
	s.reload.reloads.WithLabelValues("ok").Inc()
	s.reload.failing.Set(0)
	s.reload.lastLoad.SetToCurrentTime()
	s.log.Info("registry reloaded", "production", reg.Production().Name)
	return nil
}

// watchRegistry reloads on SIGHUP and when the registry file or a file in
// its folder tree changes (models are written before the registry that
// names them; a burst of writes is settled for settle before reloading).
func (s *Service) watchRegistry(ctx context.Context, settle time.Duration) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Warn("registry file watch unavailable; SIGHUP still reloads", "err", err)
	} else {
		defer w.Close()
		dir := filepath.Dir(s.cfg.Registry)
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = w.Add(p)
			}
			return nil
		})
	}
	var events <-chan fsnotify.Event
	if w != nil {
		events = w.Events
	}
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_ = s.Reload()
		case <-events:
			timer = time.After(settle)
		case <-timer:
			timer = nil
			_ = s.Reload()
		}
	}
}
