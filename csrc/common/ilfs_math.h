// il-FS math shared by the CPU core and the CUDA host code (docs/scorers.md, section 4): token rule,
// PLSA EM, closed form.
#pragma once
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <vector>

#if defined(__CUDACC__)
#define SWNAS_HD __host__ __device__
#else
#define SWNAS_HD
#endif

namespace swnas {
namespace ilfs {

// Accumulates one class's distance into the running (sum of 1/d, number of zero distances).
SWNAS_HD inline void add_distance(double d, double& inv_sum, int& nzero, double& inv_out, bool& zero_out) {
  const double inv = 1.0 / d;
  zero_out = !(inv <= DBL_MAX);  // d == 0, or 1/d overflowed: a zero distance
  inv_out = zero_out ? 0.0 : inv;
  inv_sum += inv_out;
  nzero += zero_out ? 1 : 0;
}

// pi from the own class's reciprocal distance and the totals; zero-distance classes share equally.
SWNAS_HD inline double relevance_pi(double own_inv, bool own_zero, double inv_sum, int nzero) {
  if (nzero > 0) return own_zero ? 1.0 / double(nzero) : 0.0;
  return own_inv / inv_sum;
}

SWNAS_HD inline int token_of(double pi, int tt) {
  int t = int(std::floor(pi * double(tt)));
  return t < 0 ? 0 : (t > tt - 1 ? tt - 1 : t);
}

struct PlsaResult {
  std::vector<double> v;       // P(z1|f)
  std::vector<double> ptz;     // (TT, 2) row-major
  std::vector<double> loglik;  // per iteration
};

// Two-factor PLSA on counts n(t, f) (row-major TT x p); identical in arithmetic order to the reference.
inline PlsaResult plsa(const int64_t* counts, int tt, int64_t p, int max_iter, double tol) {
  PlsaResult res;
  const double ramp = 5000.0;
  std::vector<double> up(tt);
  double rs = 0.0;
  for (int t = 0; t < tt; ++t) {
    up[t] = 1.0 + (ramp - 1.0) * double(t) / double(tt - 1);
    rs += up[t];
  }
  std::vector<double> p1(tt), p2(tt);
  for (int t = 0; t < tt; ++t) {
    p1[t] = up[t] / rs;
    p2[t] = up[tt - 1 - t] / rs;
  }
  std::vector<double> nf(p, 0.0), z1(p), z2(p);
  const int upper = (tt + 1) / 2;
  for (int64_t f = 0; f < p; ++f) {
    double tot = 0.0, hi = 0.0;
    for (int t = 0; t < tt; ++t) {
      tot += double(counts[t * p + f]);
      if (t >= upper) hi += double(counts[t * p + f]);
    }
    nf[f] = tot > 0 ? tot : 1.0;
    z1[f] = hi / nf[f];
    z2[f] = 1.0 - z1[f];
  }
  std::vector<double> c1(tt), c2(tt), r1f(p), r2f(p);
  for (int it = 0; it < max_iter; ++it) {
    double ll = 0.0;
    std::fill(c1.begin(), c1.end(), 0.0);
    std::fill(c2.begin(), c2.end(), 0.0);
    std::fill(r1f.begin(), r1f.end(), 0.0);
    std::fill(r2f.begin(), r2f.end(), 0.0);
    for (int t = 0; t < tt; ++t) {
      for (int64_t f = 0; f < p; ++f) {
        const double n = double(counts[t * p + f]);
        const double a = p1[t] * z1[f], b = p2[t] * z2[f], s = a + b;
        if (!(n > 0.0 && s > 0.0)) continue;
        ll += n * std::log(s);
        const double w = n / s;
        c1[t] += a * w;
        c2[t] += b * w;
        r1f[f] += a * w;
        r2f[f] += b * w;
      }
    }
    res.loglik.push_back(ll);
    double s1 = 0.0, s2 = 0.0;
    for (int t = 0; t < tt; ++t) {
      s1 += c1[t];
      s2 += c2[t];
    }
    s1 = std::max(s1, 1e-300);
    s2 = std::max(s2, 1e-300);
    for (int t = 0; t < tt; ++t) {
      p1[t] = c1[t] / s1;
      p2[t] = c2[t] / s2;
    }
    for (int64_t f = 0; f < p; ++f) {
      z1[f] = r1f[f] / nf[f];
      z2[f] = r2f[f] / nf[f];
    }
    const size_t k = res.loglik.size();
    if (k > 1 && std::fabs(res.loglik[k - 1] - res.loglik[k - 2]) < tol) break;
  }
  res.v = z1;
  res.ptz.resize(size_t(tt) * 2);
  for (int t = 0; t < tt; ++t) {
    res.ptz[2 * t] = p1[t];
    res.ptz[2 * t + 1] = p2[t];
  }
  return res;
}

// Step 4: score = r (1'v) / (1 - r v'v) v with r = factor / v'v, factor = min(ceil(max v_i 1'v)/p, 0.99).
inline std::vector<double> closed_form(const std::vector<double>& v) {
  const int64_t p = int64_t(v.size());
  double sv = 0.0, vv = 0.0, mx = -1.0;
  for (double x : v) {
    sv += x;
    vv += x * x;
  }
  std::vector<double> out(p, 0.0);
  if (!(vv > 0.0)) return out;
  for (double x : v) mx = std::max(mx, x * sv);
  const double factor = std::min(std::ceil(mx) / double(p), 0.99);
  const double r = factor / vv;
  const double c = r * sv / (1.0 - factor);
  for (int64_t i = 0; i < p; ++i) out[i] = c * v[i];
  return out;
}

// Everything il-FS computes for one problem, on either side: the token counts (TT x p, row-major),
// the EM result and the scores; ok = false when the data held NaN/Inf (nothing else is filled then).
struct Outcome {
  bool ok = false;
  std::vector<int64_t> counts;
  PlsaResult em;
  std::vector<double> scores;
};

// Steps 4-5 of docs/scorers.md section 4, once the counts are in: the EM and the closed form.
inline void finish(Outcome& o, int tt, int64_t p, int max_iter, double tol) {
  if (!o.ok) return;
  o.em = plsa(o.counts.data(), tt, p, max_iter, tol);
  o.scores = closed_form(o.em.v);
}

}  // namespace ilfs
}  // namespace swnas
