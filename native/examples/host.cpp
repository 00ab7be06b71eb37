// host.cpp -- a C++ host of ch3d_embed through the RAII wrapper ch3d.hpp.
//
//   host_cpp MODEL INPUT.npy OUTPUT.npy STEPS [--warmup FRAMES.npy K] [--threads T]
//
// INPUT: the initial field (NX, NY, NZ) on the network grid, float32 '<f4' C order (np.save), or a
// raw float32 file with --grid NX NY NZ. FRAMES: K solver frames (K, NX, NY, NZ) fed through step()
// to warm the hidden states up; the rollout then starts from INPUT. OUTPUT: the field after STEPS
// steps (.npy, or raw float32). Exit status 0, or 1 with one line on stderr.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "ch3d.hpp"

namespace {

bool is_npy(const std::string& p) { return p.size() >= 4 && p.compare(p.size() - 4, 4, ".npy") == 0; }

// the float32 values of a .npy (shape into dims) or of a raw file (dims as given)
std::vector<float> read_field(const std::string& path, std::vector<int64_t>& dims) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  if (is_npy(path)) {
    char pre[10];
    in.read(pre, 10);
    if (!in || std::memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] != 1) throw std::runtime_error(path + ": not a .npy v1");
    std::string header(static_cast<unsigned char>(pre[8]) | (static_cast<unsigned char>(pre[9]) << 8), ' ');
    in.read(header.data(), static_cast<std::streamsize>(header.size()));
    if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': True") != std::string::npos)
      throw std::runtime_error(path + ": expected float32 '<f4' in C order");
    dims.clear();
    const char* p = header.c_str() + header.find('(', header.find("'shape'"));
    for (char* end = nullptr;; p = end + 1) {
      long long v = std::strtoll(p + 1, &end, 10);
      if (end == p + 1) break;
      dims.push_back(v);
      if (*end != ',') break;
    }
  }
  const auto count = std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<int64_t>());
  std::vector<float> a(static_cast<size_t>(count));
  in.read(reinterpret_cast<char*>(a.data()), static_cast<std::streamsize>(a.size() * sizeof(float)));
  if (!in) throw std::runtime_error(path + ": too short for " + std::to_string(count) + " float32 values");
  return a;
}

void write_field(const std::string& path, const std::vector<float>& a, const std::vector<int64_t>& d) {
  std::ofstream out(path, std::ios::binary);
  if (is_npy(path)) {
    std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(d[0]) + ", " +
                    std::to_string(d[1]) + ", " + std::to_string(d[2]) + "), }";
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h += '\n';
    const char pre[10] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<char>(h.size() & 0xff),
                          static_cast<char>(h.size() >> 8)};
    out.write(pre, 10);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
  }
  out.write(reinterpret_cast<const char*>(a.data()), static_cast<std::streamsize>(a.size() * sizeof(float)));
  if (!out) throw std::runtime_error("cannot write " + path);
}

double mean(const std::vector<float>& a) { return std::accumulate(a.begin(), a.end(), 0.0) / a.size(); }

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 5) {
    std::cerr << "usage: " << argv[0] << " MODEL INPUT OUTPUT STEPS [--grid NX NY NZ] [--warmup FRAMES K] [--threads T]\n";
    return 1;
  }
  const std::string model = argv[1], input = argv[2], output = argv[3];
  const int64_t steps = std::atoll(argv[4]);
  std::vector<int64_t> g{0, 0, 0};
  std::string frames;
  int64_t k = 0;
  int threads = 1;
  for (int i = 5; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--grid" && i + 3 < argc) {
      for (auto& v : g) v = std::atoll(argv[++i]);
    } else if (a == "--warmup" && i + 2 < argc) {
      frames = argv[++i];
      k = std::atoll(argv[++i]);
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else {
      throw std::runtime_error("unknown argument " + a);
    }
  }
  std::vector<float> phi = read_field(input, g);
  if (g.size() != 3) throw std::runtime_error(input + ": expected a field (X, Y, Z)");

  ch3d::Model m(model, threads, "cpu");
  std::cout << "model " << model << ": hidden " << m.hidden() << ", downscale " << m.downscale() << ", halo "
            << m.halo() << ", time per step " << m.time_per_step() << ", epsilon " << m.metadata("epsilon") << "\n";
  if (!frames.empty()) {  // warm the hidden states up on K solver frames (teacher forcing)
    std::vector<int64_t> fd{k, g[0], g[1], g[2]};
    std::vector<float> w = read_field(frames, fd);
    if (fd != std::vector<int64_t>{k, g[0], g[1], g[2]}) throw std::runtime_error(frames + ": expected (K, X, Y, Z)");
    const size_t voxels = phi.size();
    for (int64_t i = 0; i < k; ++i) m.step(w.data() + i * voxels, 1, g[0], g[1], g[2]);
  }
  const double m0 = mean(phi);
  m.rollout(phi.data(), 1, g[0], g[1], g[2], steps);
  const double m1 = mean(phi);
  std::printf("%lld steps: mean phi %.7f -> %.7f, phi[0] %.7f\n", static_cast<long long>(steps), m0, m1, phi[0]);
  write_field(output, phi, g);
  if (m.conservative() && std::fabs(m1 - m0) > 1e-5) throw std::runtime_error("mass not kept");
  return 0;
} catch (const std::exception& e) {  // ch3d::Error carries code() too
  std::cerr << "host_cpp: " << e.what() << "\n";
  return 1;
}
