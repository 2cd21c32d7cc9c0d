// Routing specs and distributions: parsing, histogram files, determinism, exact balanced counts.
#include "simulator/routing.hpp"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <set>

#include <gtest/gtest.h>

#include "core/errors.hpp"
#include "core/file_io.hpp"

namespace foldplan {
namespace {

std::string temporary_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          (name + "-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
           ".json"))
      .string();
}

TEST(RoutingSpec, ParsesTheNamedDistributions) {
  EXPECT_EQ(parse_routing_spec("balanced").kind, RoutingKind::balanced);
  EXPECT_EQ(parse_routing_spec("uniform").kind, RoutingKind::uniform);
  const RoutingSpec zipf = parse_routing_spec("zipf:1.2");
  EXPECT_EQ(zipf.kind, RoutingKind::zipf);
  EXPECT_DOUBLE_EQ(zipf.zipf_exponent, 1.2);
  const RoutingSpec dirichlet = parse_routing_spec("dirichlet:0.5");
  EXPECT_EQ(dirichlet.kind, RoutingKind::dirichlet);
  EXPECT_DOUBLE_EQ(dirichlet.dirichlet_alpha, 0.5);
}

TEST(RoutingSpec, BadSpecsAreInputErrorsNamingTheSpec) {
  for (const std::string bad : {"zipf", "zipf:", "zipf:-1", "zipf:abc", "zipf:1.2x", "dirichlet:0",
                                "dirichlet:inf", "lognormal", ""}) {
    try {
      parse_routing_spec(bad, "--routing");
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const InputError& error) {
      EXPECT_EQ(error.field(), "--routing");
      EXPECT_NE(error.rule().find("\"" + bad + "\""), std::string::npos) << error.what();
    }
  }
  EXPECT_THROW(parse_routing_spec("/no/such/histogram.json"), InputError);
}

TEST(RoutingSpec, HistogramFileRoundTrips) {
  const std::string path = temporary_path("foldplan-histogram");
  write_expert_histogram(path, std::vector<double>{1, 3, 0, 4});
  const RoutingSpec spec = parse_routing_spec(path);
  std::filesystem::remove(path);
  EXPECT_EQ(spec.kind, RoutingKind::histogram);
  EXPECT_EQ(spec.expert_share, (std::vector<double>{0.125, 0.375, 0, 0.5}));
  EXPECT_EQ(draw_expert_shares(spec, 4, 7), spec.expert_share);
  EXPECT_EQ(expert_share_from_json(expert_share_to_json(spec.expert_share), "again"),
            spec.expert_share);
  try {
    draw_expert_shares(spec, 8, 7, "--routing");
    ADD_FAILURE() << "a 4-expert histogram was used for 8 experts";
  } catch (const InputError& error) {
    EXPECT_NE(error.rule().find(path), std::string::npos);
  }
}

TEST(RoutingSpec, HistogramContentsAreChecked) {
  const auto rejects = [](const nlohmann::json& json, const std::string& field) {
    try {
      expert_share_from_json(json, "h.json");
      ADD_FAILURE() << json.dump();
    } catch (const InputError& error) {
      EXPECT_EQ(error.field(), field) << error.what();
    }
  };
  rejects({{"expert_share", {1, -1}}}, "h.json.expert_share[1]");
  rejects({{"expert_share", {0, 0}}}, "h.json.expert_share");
  rejects({{"expert_share", nlohmann::json::array()}}, "h.json.expert_share");
  rejects({{"expert_share", {1}}, {"extra", 1}}, "h.json.extra");
}

TEST(RoutingSeed, EveryCoordinateChangesTheSeed) {
  const std::uint64_t base = routing_seed(1, 2, 3, 4);
  EXPECT_EQ(base, routing_seed(1, 2, 3, 4));
  EXPECT_NE(base, routing_seed(9, 2, 3, 4));
  EXPECT_NE(base, routing_seed(1, 9, 3, 4));
  EXPECT_NE(base, routing_seed(1, 2, 9, 4));
  EXPECT_NE(base, routing_seed(1, 2, 3, 9));
}

TEST(BalancedRouting, EveryExpertGetsExactlyItsShare) {
  const RoutingSpec spec = parse_routing_spec("balanced");
  const std::vector<double> shares = draw_expert_shares(spec, 8, 0);
  for (const std::int64_t offset : {0, 5, 1000}) {
    const SourceRouting routing = route_source_tokens(spec, shares, 16, 2, offset, 0);
    EXPECT_EQ(tokens_per_expert(routing, 8), std::vector<std::int64_t>(8, 4));
  }
}

TEST(RandomRouting, PicksAreDistinctAndProbsSumToOne) {
  for (const std::string text : {"uniform", "zipf:2.0", "dirichlet:0.05"}) {
    const RoutingSpec spec = parse_routing_spec(text);
    const std::vector<double> shares = draw_expert_shares(spec, 16, 3);
    EXPECT_NEAR(std::accumulate(shares.begin(), shares.end(), 0.0), 1.0, 1e-12);
    const SourceRouting routing = route_source_tokens(spec, shares, 500, 8, 0, 11);
    for (std::int64_t token = 0; token < routing.num_tokens; ++token) {
      const auto first = routing.experts.begin() + token * 8;
      EXPECT_EQ(std::set<std::int32_t>(first, first + 8).size(), 8u) << text;
      const auto probs = routing.probs.begin() + token * 8;
      EXPECT_NEAR(std::accumulate(probs, probs + 8, 0.0), 1.0, 1e-5);
      EXPECT_TRUE(std::is_sorted(probs, probs + 8, std::greater<>()));
    }
  }
}

TEST(RandomRouting, FewerPositiveSharesThanTopkStillGivesDistinctPicks) {
  const std::vector<double> shares = {0.5, 0.5, 0, 0};
  const SourceRouting routing =
      route_source_tokens(parse_routing_spec("uniform"), shares, 50, 3, 0, 5);
  for (std::int64_t token = 0; token < 50; ++token) {
    const auto first = routing.experts.begin() + token * 3;
    EXPECT_EQ(std::set<std::int32_t>(first, first + 3).size(), 3u);
  }
}

TEST(RandomRouting, IsDeterministicGivenTheSeed) {
  const RoutingSpec spec = parse_routing_spec("zipf:1.2");
  const std::vector<double> shares = draw_expert_shares(spec, 64, 99);
  EXPECT_EQ(shares, draw_expert_shares(spec, 64, 99));
  EXPECT_NE(shares, draw_expert_shares(spec, 64, 100));
  const SourceRouting first = route_source_tokens(spec, shares, 256, 8, 0, 1);
  const SourceRouting again = route_source_tokens(spec, shares, 256, 8, 0, 1);
  const SourceRouting other = route_source_tokens(spec, shares, 256, 8, 0, 2);
  EXPECT_EQ(first.experts, again.experts);
  EXPECT_EQ(first.probs, again.probs);
  EXPECT_NE(first.experts, other.experts);
}

TEST(ZipfRouting, TheMostPopularExpertGetsAboutItsShare) {
  const RoutingSpec spec = parse_routing_spec("zipf:1.0");
  const std::vector<double> shares = draw_expert_shares(spec, 8, 4);
  // H_8 = 2.7179: the top expert holds 1/H_8 of the popularity.
  EXPECT_NEAR(*std::max_element(shares.begin(), shares.end()), 1 / 2.717857, 1e-6);
  const SourceRouting routing = route_source_tokens(spec, shares, 20000, 1, 0, 8);
  const auto counts = tokens_per_expert(routing, 8);
  const auto top = std::max_element(shares.begin(), shares.end()) - shares.begin();
  EXPECT_NEAR(static_cast<double>(counts[top]) / 20000, shares[top], 0.01);
}

} // namespace
} // namespace foldplan
