// ch3d.hpp -- a small RAII wrapper of ch3d_embed.h for C++ hosts (header only, C++17).
//
//   ch3d::Model m("models/crnn.onnx", /*threads=*/4, "cpu");   // throws ch3d::Error on failure
//   m.rollout(phi.data(), 1, nx, ny, nz, 100);                  // phi: std::vector<float>, C order
//
// Errors cross the C ABI as codes; this wrapper turns them into ch3d::Error (code() and what(), the
// one-line text of ch3d_last_error()) on the C++ side only.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "ch3d_embed.h"

namespace ch3d {

class Error : public std::runtime_error {
 public:
  Error(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

inline void check(int code) {
  if (code != CH3D_OK) throw Error(code, ch3d_last_error());
}

class Model {
 public:
  explicit Model(const std::string& path, int threads = 0, const char* provider = "auto") {
    check(ch3d_open(path.c_str(), threads, provider, &h_));
  }
  ~Model() { ch3d_close(h_); }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  Model(Model&& o) noexcept : h_(o.h_) { o.h_ = nullptr; }
  Model& operator=(Model&& o) noexcept {
    if (this != &o) {
      ch3d_close(h_);
      h_ = o.h_;
      o.h_ = nullptr;
    }
    return *this;
  }

  int64_t hidden() const { return ch3d_hidden(h_); }
  int64_t downscale() const { return ch3d_downscale(h_); }
  int64_t kernel() const { return ch3d_kernel(h_); }
  int64_t min_grid() const { return ch3d_min_grid(h_); }
  int64_t halo() const { return ch3d_halo(h_); }
  bool conservative() const { return ch3d_conservative(h_) == 1; }
  double time_per_step() const { return ch3d_time_per_step(h_); }
  double metadata(const char* key) const {
    double v = 0;
    check(ch3d_metadata_number(h_, key, &v));
    return v;
  }
  std::string metadata_json() const { return ch3d_metadata_json(h_); }
  std::string device() const { return ch3d_device(h_); }

  void reset() { check(ch3d_reset(h_)); }
  void step(float* phi, int64_t n, int64_t nx, int64_t ny, int64_t nz) { check(ch3d_step(h_, phi, n, nx, ny, nz)); }
  void rollout(float* phi, int64_t n, int64_t nx, int64_t ny, int64_t nz, int64_t steps) {
    check(ch3d_rollout(h_, phi, n, nx, ny, nz, steps));
  }
  void step_halo(const float* phi, const float* h1, const float* h2, int64_t n, int64_t nx, int64_t ny, int64_t nz,
                 int64_t halo, float* phi_out, float* h1_out, float* h2_out) {
    check(ch3d_step_halo(h_, phi, h1, h2, n, nx, ny, nz, halo, phi_out, h1_out, h2_out));
  }
  ch3d_handle* get() const noexcept { return h_; }

 private:
  ch3d_handle* h_ = nullptr;
};

}  // namespace ch3d
