// The flags that describe a search (model, cluster, batch, pinned dimensions, options), shared by
// `foldplan search` and `foldplan report`, the SearchRequest they build, and the progress line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "planner/search.hpp"

namespace foldplan::cli {

struct SearchFlags {
  std::string model = "mixtral-8x22b";
  std::string cluster = "dgx-h100";
  std::int64_t gpus = 128;
  std::int64_t seq = 4096;
  std::int64_t gbs = 256;
  std::vector<std::int64_t> tp, cp, pp, vpp, ep, etp, mbs;
  std::vector<std::string> recompute, dispatcher, capacity;
  bool no_folding = false;
  std::string fp8;
  std::string cp_comm_type = "p2p";
  bool no_overlap_grad_reduce = false;
  bool overlap_ep_comm = false;
  unsigned threads = 0;
  bool progress = false;
  std::string calibration;
};

// Registers the flags on `command`, storing into `flags` (which must outlive parsing).
void add_search_flags(CLI::App& command, SearchFlags& flags);

// InputError naming the flag for anything wrong. `folding` chooses the space searched.
SearchRequest request_from_flags(const SearchFlags& flags, bool folding);

// Progress on stderr for a search that runs past a second, when stderr is a terminal (or
// `forced`, --progress); nothing otherwise.
SearchProgress progress_reporter(bool forced);

} // namespace foldplan::cli
