package consumer

import (
	"os"
	"testing"

	"github.com/leadscorer/leadscorer/internal/testenv"
)

// TestMain fails the package's tests when a goroutine outlives them. Run
// with zombieEnv set, the test binary is instead the scorer process that
// TestZombieScorerStopsAndLeavesItsSuccessorAlone freezes and thaws.
func TestMain(m *testing.M) {
	if os.Getenv(zombieEnv) != "" {
		os.Exit(zombieMain())
	}
	testenv.Main(m)
}
