package replay

import (
	"testing"

	"github.com/leadscorer/leadscorer/internal/testenv"
)

// TestMain fails the package's tests when a goroutine outlives them.
func TestMain(m *testing.M) { testenv.Main(m) }
