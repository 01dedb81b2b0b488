package scoring

import (
	"math"
	"math/big"
	"path/filepath"
	"strconv"
	"testing"
)

// Every entry of expfTab, with its i<<47 added back, must be 2^(i/32)
// rounded to nearest: d - ulp/2 <= 2^(i/32) <= d + ulp/2, checked as
// (d -+ ulp/2)^32 against 2^i in exact arithmetic.
func TestExpfTableIsCorrectlyRounded(t *testing.T) {
	for i, bits := range expfTab {
		d := math.Float64frombits(bits + uint64(i)<<47)
		half := (math.Nextafter(d, 2) - d) / 2
		want := new(big.Float).SetPrec(4096).SetMantExp(big.NewFloat(1), i) // 2^i
		pow32 := func(sign float64) *big.Float {                            // (d + sign*half)^32, exactly
			p := new(big.Float).SetPrec(4096).SetFloat64(half)
			p.Mul(p, big.NewFloat(sign)).Add(p, big.NewFloat(d))
			for range 5 {
				p.Mul(p, p)
			}
			return p
		}
		lo, hi := pow32(-1), pow32(1)
		if lo.Cmp(want) > 0 || hi.Cmp(want) < 0 {
			t.Errorf("expfTab[%d] = %#x: %v is not 2^(%d/32) rounded to nearest", i, bits, d, i)
		}
	}
}

// sigmoid.csv holds XGBoost 1.7.4's own probabilities for margins where a
// correctly rounded exp gives another float32 (make_sigmoid_cases.py).
// sigmoid32 must give XGBoost's bits for every one.
func TestSigmoidMatchesXGBoostBitForBit(t *testing.T) {
	pairs := float32Pairs(t, "sigmoid.csv")
	wrong, rounded := 0, 0
	for _, pair := range pairs {
		m, want := pair[0], pair[1]
		if got := sigmoid32(m); math.Float32bits(got) != math.Float32bits(want) {
			if wrong < 10 {
				t.Errorf("sigmoid32(%v) = %v (%08x), XGBoost %v (%08x)", m, got, math.Float32bits(got), want, math.Float32bits(want))
			}
			wrong++
		}
		// What a correctly rounded exp gives, as this package did before.
		if 1/(1+float32(math.Exp(-float64(m)))) != want {
			rounded++
		}
	}
	t.Logf("%d margins: %d differ from XGBoost; with a correctly rounded exp %d would", len(pairs), wrong, rounded)
	if wrong > 0 {
		t.Errorf("%d of %d margins differ from XGBoost", wrong, len(pairs))
	}
	if rounded < 100 {
		t.Errorf("only %d margins tell glibc's expf from a correctly rounded one: the file lost its point", rounded)
	}
}

// The edges of glibc's expf that sigmoid32 never reaches.
func TestExpf32Edges(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, c := range []struct{ x, want float32 }{
		{0, 1},
		{-inf, 0},
		{inf, inf},
		{89, inf},          // above log(2^128)
		{-104, 0},          // below log(2^-150)
		{-103.5, 0x1p-149}, // glibc's may-underflow result
		{1, 2.7182817},
	} {
		if got := expf32(c.x); got != c.want {
			t.Errorf("expf32(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	if got := expf32(float32(math.NaN())); got == got {
		t.Errorf("expf32(NaN) = %v, want NaN", got)
	}
}

// base_margin.csv holds the margin XGBoost 1.7.4 starts from for logistic
// base scores, half of them where a correctly rounded log gives another
// float32 (make_base_margin_cases.py). logit32 must give XGBoost's bits.
func TestBaseMarginMatchesXGBoostBitForBit(t *testing.T) {
	pairs := float32Pairs(t, "base_margin.csv")
	wrong, rounded := 0, 0
	for _, pair := range pairs {
		p, want := pair[0], pair[1]
		got, err := logit32(p)
		if err != nil {
			t.Fatal(err)
		}
		if math.Float32bits(got) != math.Float32bits(want) {
			if wrong < 10 {
				t.Errorf("logit32(%v) = %v, XGBoost %v", p, got, want)
			}
			wrong++
		}
		if float32(-math.Log(float64(1/p-1))) != want {
			rounded++
		}
	}
	t.Logf("%d base scores: %d differ from XGBoost; with a correctly rounded log %d would", len(pairs), wrong, rounded)
	if wrong > 0 {
		t.Errorf("%d of %d base margins differ from XGBoost", wrong, len(pairs))
	}
	if rounded < 100 {
		t.Errorf("only %d base scores tell glibc's logf from a correctly rounded one: the file lost its point", rounded)
	}
}

func TestLogf32Edges(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, c := range []struct{ x, want float32 }{
		{1, 0},
		{0, -inf},
		{inf, inf},
		{2, 0.6931472},
		{0x1p-149, -103.27893}, // subnormal
	} {
		if got := logf32(c.x); got != c.want {
			t.Errorf("logf32(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	for _, x := range []float32{-1, float32(math.NaN()), -inf} {
		if got := logf32(x); got == got {
			t.Errorf("logf32(%v) = %v, want NaN", x, got)
		}
	}
}

// float32Pairs reads a file of testdata/xgboost whose rows are two float32s
// in hexadecimal bits (an input and XGBoost's output), after a header.
func float32Pairs(t *testing.T, name string) [][2]float32 {
	t.Helper()
	path := filepath.Join("testdata", "xgboost", name)
	_, recs := readCSV(t, path)
	bits := func(s string) float32 {
		v, err := strconv.ParseUint(s, 16, 32)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return math.Float32frombits(uint32(v))
	}
	pairs := make([][2]float32, 0, len(recs))
	for _, rec := range recs {
		pairs = append(pairs, [2]float32{bits(rec[0]), bits(rec[1])})
	}
	return pairs
}
