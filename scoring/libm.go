package scoring

import "math"

// XGBoost 1.7.4 turns a binary:logistic margin into a probability with
// common::Sigmoid, in float32:
//
//	x = std::min(-x, 88.7f);            // no overflow in expf
//	denom = expf(x) + 1.0f + 1e-16f;    // the 1e-16f never changes a sum >= 1
//	return 1.0f / denom;
//
// and expf is the C library's. On Linux that is glibc's expf (2.27 and
// later), Szabolcs Nagy's algorithm from Arm's optimized-routines, which is
// not correctly rounded: it misrounds about one float32 input in 25,000
// (0.502 ulp at worst). Go's float32(math.Exp(float64(x))) is the correctly
// rounded value, so rounding it differently moves 1 + expf(-x) by one ulp
// and the probability by one or two: the parity files of the committed
// v4.1.0 have one such row among 3,437. To give XGBoost's bits, expf32
// computes what glibc computes, step by step in float64, with the fused
// multiply-adds of the variant glibc selects on x86-64 CPUs with FMA and
// AVX2 (__expf_fma; aarch64 builds contract the same way). On an x86-64
// CPU without FMA, XGBoost would use glibc's SSE2 variant, whose roundings
// differ from these in rare cases.

// expfTab[i] is the bits of 2^(i/32) rounded to float64, less i<<47 so that
// adding k<<47 for any integer k with k%32 == i gives 2^(k/32)
// (expf_test.go checks every entry is correctly rounded).
var expfTab = [32]uint64{
	0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
	0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
	0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
	0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
	0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
	0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
	0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
	0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
}

const (
	expfN       = 32
	expfInvLn2N = 0x1.71547652b82fep+0 * expfN // 32/ln 2
	expfShift   = 0x1.8p+52                    // adding it rounds to an integer
	// 2^(r/32) ~= 1 + c2*r + c1*r^2 + c0*r^3 for |r| <= 1/2
	expfC0 = 0x1.c6af84b912394p-5 / expfN / expfN / expfN
	expfC1 = 0x1.ebfce50fac4f3p-3 / expfN / expfN
	expfC2 = 0x1.62e42ff0c52d6p-1 / expfN
)

// expf32 is glibc's expf as XGBoost 1.7.4 calls it (see above).
func expf32(x float32) float32 {
	if top := math.Float32bits(x) >> 20 & 0x7ff; top >= 0x42b { // |x| >= 88, or NaN
		switch {
		case x == float32(math.Inf(-1)):
			return 0
		case top >= 0x7f8: // +Inf or NaN
			return x + x
		case x > 0x1.62e42ep6: // overflow
			return float32(math.Inf(1))
		case x < -0x1.9fe368p6: // underflow
			return 0
		case x < -0x1.9d1d9ep6: // glibc's may-underflow: 0x1.4p-75f squared
			return 0x1p-149
		}
	}
	xd := float64(x)
	// x*32/ln2 = k + r with k an integer and |r| <= 1/2; glibc's FMA build
	// fuses both the rounding and the remainder.
	kd := math.FMA(expfInvLn2N, xd, expfShift)
	ki := math.Float64bits(kd)
	kd -= expfShift
	r := math.FMA(expfInvLn2N, xd, -kd)
	s := math.Float64frombits(expfTab[ki%expfN] + ki<<(52-5))
	z := math.FMA(r, expfC0, expfC1)
	r2 := r * r
	y := math.FMA(r, expfC2, 1)
	y = math.FMA(z, r2, y)
	return float32(y * s)
}

// sigmoid32 is XGBoost 1.7.4's common::Sigmoid, bit for bit: see above.
func sigmoid32(x float32) float32 {
	e := expf32(min(-x, 88.7))
	return 1 / (e + 1 + 1e-16)
}

// XGBoost 1.7.4 turns a logistic objective's base_score p into the margin
// every row starts from with ProbToMargin, -logf(1.0f/p - 1.0f), once at
// load. glibc's logf (the same family as its expf, 0.82 ulp) differs from
// float32(math.Log) for about one float32 in 400 between 0.01 and 100, which
// would shift every score of such a model by the difference; logf32
// computes what glibc's FMA variant (__logf_fma) computes.

// logfTab[i] is 1/c and log(c) for c near the centre of the i-th of 16
// subintervals of [0x3f330000, 2*0x3f330000) (as floats: about [0.7, 1.4)).
var logfTab = [16][2]float64{
	{0x1.661ec79f8f3bep+0, -0x1.57bf7808caadep-2},
	{0x1.571ed4aaf883dp+0, -0x1.2bef0a7c06ddbp-2},
	{0x1.49539f0f010bp+0, -0x1.01eae7f513a67p-2},
	{0x1.3c995b0b80385p+0, -0x1.b31d8a68224e9p-3},
	{0x1.30d190c8864a5p+0, -0x1.6574f0ac07758p-3},
	{0x1.25e227b0b8eap+0, -0x1.1aa2bc79c81p-3},
	{0x1.1bb4a4a1a343fp+0, -0x1.a4e76ce8c0e5ep-4},
	{0x1.12358f08ae5bap+0, -0x1.1973c5a611cccp-4},
	{0x1.0953f419900a7p+0, -0x1.252f438e10c1ep-5},
	{0x1p+0, 0x0p+0},
	{0x1.e608cfd9a47acp-1, 0x1.aa5aa5df25984p-5},
	{0x1.ca4b31f026aap-1, 0x1.c5e53aa362eb4p-4},
	{0x1.b2036576afce6p-1, 0x1.526e57720db08p-3},
	{0x1.9c2d163a1aa2dp-1, 0x1.bc2860d22477p-3},
	{0x1.886e6037841edp-1, 0x1.1058bc8a07ee1p-2},
	{0x1.767dcf5534862p-1, 0x1.4043057b6ee09p-2},
}

const (
	logfLn2 = 0x1.62e42fefa39efp-1
	// log1p(r) ~= r + a2*r^2 + a1*r^3 + a0*r^4
	logfA0  = -0x1.00ea348b88334p-2
	logfA1  = 0x1.5575b0be00b6ap-2
	logfA2  = -0x1.ffffef20a4123p-2
	logfOff = 0x3f330000
)

// logf32 is glibc's logf as XGBoost 1.7.4 calls it (see above).
func logf32(x float32) float32 {
	ix := math.Float32bits(x)
	if ix == 0x3f800000 { // log(1) = +0
		return 0
	}
	if ix-0x00800000 >= 0x7f800000-0x00800000 { // subnormal, 0, negative, Inf or NaN
		switch {
		case ix*2 == 0:
			return float32(math.Inf(-1))
		case ix == 0x7f800000:
			return x
		case ix&0x80000000 != 0 || ix*2 >= 0xff000000:
			return float32(math.NaN())
		}
		ix = math.Float32bits(x*0x1p23) - 23<<23 // subnormal: normalise
	}
	// x = 2^k z with z in [0x3f330000, 2*0x3f330000), exactly.
	tmp := ix - logfOff
	i := tmp >> (23 - 4) % 16
	k := int32(tmp) >> 23
	z := float64(math.Float32frombits(ix - tmp&0xff800000))
	invc, logc := logfTab[i][0], logfTab[i][1]
	// log(x) = log1p(z/c - 1) + log(c) + k*ln2, fused as glibc's FMA build does.
	r := math.FMA(z, invc, -1)
	y0 := math.FMA(float64(k), logfLn2, logc)
	r2 := r * r
	y := math.FMA(r, logfA1, logfA2)
	y = math.FMA(r2, logfA0, y)
	y = math.FMA(r2, y, r+y0)
	return float32(y)
}
