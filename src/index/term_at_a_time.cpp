#include "index/term_at_a_time.h"

#include <algorithm>
#include <unordered_map>
#include <utility>

#include "index/ranking.h"

namespace hearth::index {
namespace {

// The postings grouped by chunk: slot s holds postings order[start[s] .. start[s + 1]), in their
// original order (a counting sort), which is the order hearth_rank sums a chunk's terms in.
struct Grouped {
  std::vector<int64_t> row_of;
  std::vector<uint32_t> start, order;
};

Grouped GroupByChunk(const std::vector<Posting>& postings) {
  // Chunk ids are dense (INTEGER PRIMARY KEY): an array indexed by id when that is small next to
  // the postings, a hash map otherwise.
  int64_t max_row = 0;
  for (const auto& p : postings) {
    max_row = std::max(max_row, p.row);
  }
  const bool dense =
      max_row >= 0 && static_cast<uint64_t>(max_row) < 4 * postings.size() + (uint64_t{1} << 20);
  constexpr uint32_t kNone = ~uint32_t{0};
  std::vector<uint32_t> dense_slot(dense ? static_cast<size_t>(max_row) + 1 : 0, kNone);
  std::unordered_map<int64_t, uint32_t> sparse_slot;
  Grouped g;
  std::vector<uint32_t> slot(postings.size());
  for (size_t i = 0; i < postings.size(); ++i) {
    const int64_t row = postings[i].row;
    uint32_t& sl = dense && row >= 0 ? dense_slot[static_cast<size_t>(row)]
                                     : sparse_slot.try_emplace(row, kNone).first->second;
    if (sl == kNone) {
      sl = static_cast<uint32_t>(g.row_of.size());
      g.row_of.push_back(row);
      g.start.push_back(0);
    }
    slot[i] = sl;
    ++g.start[sl];
  }
  g.start.push_back(0);
  for (size_t s = 0, sum = 0; s < g.start.size(); ++s) {
    const size_t n = g.start[s];
    g.start[s] = static_cast<uint32_t>(sum);
    sum += n;
  }
  g.order.resize(postings.size());
  std::vector<uint32_t> fill(g.start.begin(), g.start.end() - 1);
  for (size_t i = 0; i < postings.size(); ++i) {
    g.order[fill[slot[i]]++] = static_cast<uint32_t>(i);
  }
  return g;
}

}  // namespace

std::vector<ScoredChunk> TopChunksByTerm(const std::vector<Posting>& postings,
                                         const TermScoring& scoring, int depth,
                                         const std::function<int(int64_t)>& length,
                                         const std::function<bool(int64_t)>& allowed,
                                         int64_t* scored) {
  if (depth <= 0) {
    return {};
  }
  const Grouped g = GroupByChunk(postings);
  const size_t n_chunks = g.row_of.size();
  auto score_of = [&](size_t s, double dl) {
    const double norm = Bm25Norm(scoring.k1, scoring.b, dl, scoring.avgdl);
    double score = 0;
    for (uint32_t i = g.start[s]; i < g.start[s + 1]; ++i) {
      const Posting& p = postings[g.order[i]];
      score += Bm25Term(scoring.weight[p.term], p.f, scoring.k1, norm);
    }
    return score;
  };
  std::vector<std::pair<double, uint32_t>> bound(n_chunks);
  for (size_t s = 0; s < n_chunks; ++s) {
    int min_dl = 0;
    for (uint32_t i = g.start[s]; i < g.start[s + 1]; ++i) {
      min_dl += postings[g.order[i]].count;
    }
    bound[s] = {score_of(s, static_cast<double>(min_dl)), static_cast<uint32_t>(s)};
  }
  // A max-heap, not a sort: only the few chunks popped before the bound falls short are ordered.
  std::make_heap(bound.begin(), bound.end());
  // The best `depth` exact scores so far, the last-ranked on top (ties: the lower row ranks
  // first, as the final order has it).
  auto before = [](const std::pair<double, int64_t>& x, const std::pair<double, int64_t>& y) {
    return x.first != y.first ? x.first > y.first : x.second < y.second;
  };
  std::vector<std::pair<double, int64_t>> heap;
  std::vector<ScoredChunk> found;
  const auto full = static_cast<size_t>(depth);
  while (!bound.empty()) {
    std::pop_heap(bound.begin(), bound.end());
    const auto [ub, s] = bound.back();
    bound.pop_back();
    if (heap.size() == full && ub < heap.front().first) {
      break;
    }
    const int64_t row = g.row_of[s];
    if (allowed && !allowed(row)) {
      continue;
    }
    if (scored != nullptr) {
      ++*scored;
    }
    const double score = score_of(s, length(row));
    const std::pair<double, int64_t> e{score, row};
    found.push_back({row, score});
    if (heap.size() < full) {
      heap.push_back(e);
      std::push_heap(heap.begin(), heap.end(), before);
    } else if (before(e, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), before);
      heap.back() = e;
      std::push_heap(heap.begin(), heap.end(), before);
    }
  }
  std::sort(found.begin(), found.end(), [](const ScoredChunk& x, const ScoredChunk& y) {
    return x.score != y.score ? x.score > y.score : x.row < y.row;
  });
  if (found.size() > full) {
    found.resize(full);
  }
  return found;
}

}  // namespace hearth::index
