#include "simulator/op_timer.hpp"

#include <gtest/gtest.h>

namespace foldplan {
namespace {

// Two nodes of a DGX H100 cluster: a TP family inside nodes, a PP family across them.
StepProgram two_node_program() {
  StepProgram program;
  program.world_size = 16;
  program.groups = {{.id = 0, .name = "tp", .members = {}}, {.id = 1, .name = "pp", .members = {}}};
  for (std::int64_t base = 0; base < 16; base += 2)
    program.groups[0].members.push_back({base, base + 1});
  for (std::int64_t rank = 0; rank < 8; ++rank)
    program.groups[1].members.push_back({rank, rank + 8});
  RankProgram everyone;
  for (std::int64_t rank = 0; rank < 16; ++rank)
    everyone.ranks.push_back(rank);
  program.programs = {everyone};
  return program;
}

TEST(OpTimer, EachOpKindIsTimedByTheCostModel) {
  const ClusterSpec cluster = load_cluster("dgx-h100");
  const CostContext context(cluster, 16);
  const StepProgram program = two_node_program();
  const CostModelOpTimer timer(context, program);

  Op gemm{.kind = OpKind::gemm, .shape = GemmShape{.m = 4096, .n = 4096, .k = 4096}};
  EXPECT_DOUBLE_EQ(timer(gemm, 0),
                   context.compute().gemm_time_s(4096, 4096, 4096, GemmPrecision::bf16));
  Op grouped{.kind = OpKind::gemm,
             .shape =
                 GemmShape{.m = 1024, .n = 4096, .k = 6144, .groups = 8, .dtype = GemmDtype::fp8}};
  EXPECT_DOUBLE_EQ(timer(grouped, 3),
                   context.compute().grouped_gemm_time_s(8, 1024, 4096, 6144, GemmPrecision::fp8));
  Op memory{.kind = OpKind::memory_bound, .shape = MemoryBoundShape{.bytes = 1e9}};
  EXPECT_DOUBLE_EQ(timer(memory, 0), context.compute().memory_bound_time_s(1e9));

  // The TP all-gather of rank 5 runs on its own group [4, 5], inside one node.
  Op gather{
      .kind = OpKind::collective,
      .stream = Stream::tp_comm,
      .shape = CollectiveShape{
          .op = CollectiveOp::all_gather, .group_id = 0, .bytes = 64e6, .send_bytes_per_peer = {}}};
  const std::int64_t tp_group[] = {4, 5};
  EXPECT_DOUBLE_EQ(timer(gather, 5),
                   context.collectives().time_s(CollectiveKind::all_gather,
                                                place_group(context.cluster(), tp_group), 64e6));

  // A pipeline send crosses nodes and costs more than the same bytes inside one.
  Op send{.kind = OpKind::send,
          .stream = Stream::pp_comm,
          .shape = PeerTransfer{.group_id = 1, .peer_index = 1, .bytes = 64e6, .tag = 0}};
  const std::int64_t inside[] = {0, 1};
  EXPECT_GT(timer(send, 0),
            context.collectives().time_s(CollectiveKind::send_recv,
                                         place_group(context.cluster(), inside), 64e6));
}

TEST(OpTimer, AllToAllVIsPacedByTheLargestSplit) {
  const ClusterSpec cluster = load_cluster("dgx-h100");
  const CostContext context(cluster, 16);
  const StepProgram program = two_node_program();
  const CostModelOpTimer timer(context, program);
  Op even{.kind = OpKind::collective,
          .stream = Stream::ep_comm,
          .shape = CollectiveShape{.op = CollectiveOp::all_to_all_v,
                                   .group_id = 0,
                                   .bytes = 100e6,
                                   .send_bytes_per_peer = {50e6, 50e6}}};
  Op skewed = even;
  std::get<CollectiveShape>(skewed.shape).send_bytes_per_peer = {20e6, 80e6};
  EXPECT_GT(timer(skewed, 0), timer(even, 0));
}

} // namespace
} // namespace foldplan

namespace foldplan {
namespace {

// What an all-to-all-v keeps on the sending rank costs nothing; the rest is paced by the largest
// remote split.
TEST(OpTimer, AllToAllVChargesOnlyTheBytesThatLeaveTheRank) {
  const ClusterSpec cluster = load_cluster("dgx-h100");
  const CostContext context(cluster, 16);
  const StepProgram program = two_node_program();
  const CostModelOpTimer timer(context, program);
  Op all_local{.kind = OpKind::collective,
               .stream = Stream::ep_comm,
               .shape = CollectiveShape{.op = CollectiveOp::all_to_all_v,
                                        .group_id = 0,
                                        .bytes = 100e6,
                                        .send_bytes_per_peer = {100e6, 0}}};
  EXPECT_DOUBLE_EQ(timer(all_local, 0), 0.0); // rank 0 is position 0 of its group
  EXPECT_GT(timer(all_local, 1), 0.0);        // rank 1 sends it all to rank 0
  Op uniform = all_local;
  std::get<CollectiveShape>(uniform.shape).send_bytes_per_peer = {50e6, 50e6};
  Op plain = all_local;
  std::get<CollectiveShape>(plain.shape).op = CollectiveOp::all_to_all;
  std::get<CollectiveShape>(plain.shape).send_bytes_per_peer = {};
  // Equal splits cost what the plain all-to-all of the same buffer costs.
  EXPECT_DOUBLE_EQ(timer(uniform, 0), timer(plain, 0));
}

TEST(OpTimer, RanksAreInterchangeableWhenEveryGroupOfAFamilyIsLaidOutAlike) {
  const CostContext context(load_cluster("dgx-h100"), 16);
  const StepProgram aligned = two_node_program();
  EXPECT_TRUE(CostModelOpTimer(context, aligned).ranks_interchangeable());

  // Pairs that straddle the node boundary next to pairs inside one node: rank 7's TP all-gather
  // would cross InfiniBand while rank 1's stays on NVLink.
  StepProgram straddling = aligned;
  straddling.groups[0].members = {{15, 0}};
  for (std::int64_t base = 1; base < 15; base += 2)
    straddling.groups[0].members.push_back({base, base + 1}); // {7, 8} straddles too
  EXPECT_FALSE(CostModelOpTimer(context, straddling).ranks_interchangeable());
}

} // namespace
} // namespace foldplan
