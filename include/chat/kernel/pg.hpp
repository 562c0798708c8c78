// A pg scope (kernel/src/pg.erl): process groups shared with the pg scopes of the same name on
// every visible node. The scope process is registered under the scope's name ('pg' for the
// default scope) and speaks pg's protocol:
//   {discover, Peer}            on nodeup, to {Scope, Node}; answered by a sync and, if the
//                               peer is new to us, a discover back (and a monitor of it);
//   {'$gen_cast', {sync, Peer, [{Group, Pids}]}}  the peer's whole local membership;
//   {join, Peer, Group, Pids}, {leave, Peer, Pids, Groups}  changes, to every known peer.
// OTP 29 rebuilt pg on data_publisher (protocol version 1: {discover, Peer, Vsn},
// {local_data, …}, {update, Peer, Changes}) and still speaks the version above to peers that
// use it; this scope speaks the version above to everyone and understands version 1 too.
// A member of a node that goes down (its scope's monitor fires) leaves every group.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/node/node.hpp"

namespace chat::kernel {

class PgScope final : public node::Process {
 public:
  // `scope`: the registered name, also what peers address ({Scope, Node}).
  PgScope(std::string scope, PgScope** registry) : scope_(std::move(scope)), registry_(registry) {}
  ~PgScope() override;
  void started() override;
  void receive(term::Term&& msg) override;

  // pg:join/3 and pg:leave/3 for local processes (as this node's code calls them).
  void join(const term::Term& group, const term::Pid& pid);
  bool leave(const term::Term& group, const term::Pid& pid);
  // pg:get_members/2, get_local_members/2, which_groups/1, which_local_groups/1.
  [[nodiscard]] std::vector<term::Pid> members(const term::Term& group, bool local_only = false) const;
  [[nodiscard]] std::vector<term::Term> groups(bool local_only = false) const;
  [[nodiscard]] size_t peer_count() const { return remote_.size(); }

 private:
  using Members = std::unordered_map<term::Pid, uint32_t, node::PidHash>;  // pid -> times joined
  struct Group {
    term::Term name;
    Members all;
    Members local;
  };
  struct LocalMember {
    term::Ref mref;
    std::vector<term::Term> groups;  // once per join
  };
  struct Peer {
    term::Ref mref;
    std::map<std::string, std::pair<term::Term, Members>> groups;  // what that scope has told us
  };

  void discover(const term::Pid& peer, bool answer_back);
  void sync(const term::Pid& peer, const std::vector<std::pair<term::Term, std::vector<term::Pid>>>& groups);
  void remote_join(const term::Pid& peer, const term::Term& group, const std::vector<term::Pid>& pids);
  void remote_leave(const term::Pid& peer, const std::vector<term::Pid>& pids, const term::Term& group);
  void add(const term::Term& group, const term::Pid& pid, bool local);
  void remove(const term::Term& group, const term::Pid& pid, bool local);
  void broadcast(const term::Term& msg);
  std::vector<std::pair<term::Term, std::vector<term::Pid>>> local_groups() const;

  std::string scope_;
  PgScope** registry_;
  std::map<std::string, Group> groups_;  // by encoded group name
  std::unordered_map<term::Pid, LocalMember, node::PidHash> local_;
  std::unordered_map<term::Pid, Peer, node::PidHash> remote_;
};

}  // namespace chat::kernel
