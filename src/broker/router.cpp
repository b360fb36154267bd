#include "broker/router.hpp"

#include "broker/session.hpp"

#include <algorithm>

namespace fleetcore::broker {

namespace {
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
}  // namespace

struct router::node {
  struct group {
    std::string name;
    std::vector<route_entry> members;
    std::size_t next = 0;
  };
  std::unordered_map<std::string, std::unique_ptr<node>, string_hash, std::equal_to<>> children;
  std::vector<route_entry> subscribers;
  std::vector<group> groups;

  bool empty() const { return children.empty() && subscribers.empty() && groups.empty(); }
};

void split_levels(std::string_view topic, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t start = 0;
  while (true) {
    std::size_t slash = topic.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(topic.substr(start));
      return;
    }
    out.push_back(topic.substr(start, slash - start));
    start = slash + 1;
  }
}

router::router() : root_(std::make_unique<node>()) {}
router::~router() = default;

bool router::add(std::string_view filter, std::string_view group, const std::shared_ptr<session>& target,
                 const subscription_options& opts) {
  std::vector<std::string_view> levels;
  split_levels(filter, levels);
  node* n = root_.get();
  for (auto level : levels) {
    auto it = n->children.find(level);
    if (it == n->children.end())
      it = n->children.emplace(std::string(level), std::make_unique<node>()).first;
    n = it->second.get();
  }
  std::vector<route_entry>* list = &n->subscribers;
  if (!group.empty()) {
    auto g = std::find_if(n->groups.begin(), n->groups.end(), [&](auto& x) { return x.name == group; });
    if (g == n->groups.end()) {
      n->groups.push_back({std::string(group), {}, 0});
      g = std::prev(n->groups.end());
    }
    list = &g->members;
  }
  for (auto& e : *list) {
    if (e.target.get() == target.get()) {
      e.opts = opts;
      return false;
    }
  }
  list->push_back({target, opts, !group.empty()});
  ++count_;
  return true;
}

bool router::remove(std::string_view filter, std::string_view group, const session* target) {
  std::vector<std::string_view> levels;
  split_levels(filter, levels);
  std::vector<std::pair<node*, std::string_view>> path;
  node* n = root_.get();
  for (auto level : levels) {
    auto it = n->children.find(level);
    if (it == n->children.end()) return false;
    path.emplace_back(n, level);
    n = it->second.get();
  }
  auto erase_from = [&](std::vector<route_entry>& list) {
    auto it = std::find_if(list.begin(), list.end(), [&](auto& e) { return e.target.get() == target; });
    if (it == list.end()) return false;
    list.erase(it);
    return true;
  };
  bool removed = false;
  if (group.empty()) {
    removed = erase_from(n->subscribers);
  } else {
    auto g = std::find_if(n->groups.begin(), n->groups.end(), [&](auto& x) { return x.name == group; });
    if (g != n->groups.end()) {
      removed = erase_from(g->members);
      if (g->members.empty()) n->groups.erase(g);
    }
  }
  if (!removed) return false;
  --count_;
  // Prune empty nodes bottom-up.
  while (!path.empty() && n->empty()) {
    auto [parent, level] = path.back();
    path.pop_back();
    parent->children.erase(parent->children.find(level));
    n = parent;
  }
  return true;
}

void router::clear() {
  root_ = std::make_unique<node>();
  count_ = 0;
}

struct router::match_state {
  const std::vector<std::string_view>& levels;
  std::vector<route_entry>& out;
  std::vector<std::string_view>* groups;
  bool skip_peers;

  void add(const route_entry& e, std::string_view group) {
    if (skip_peers && e.target->peer) return;
    out.push_back(e);
    if (groups) groups->push_back(group);
  }
  /// One member of a shared group: round-robin, preferring members that are online.
  void pick(node::group& g) {
    std::size_t n = g.members.size(), eligible = 0;
    for (std::size_t k = 0; k < n; ++k) {
      auto& e = g.members[(g.next + k) % n];
      if (skip_peers && e.target->peer) continue;
      ++eligible;
      if (e.target->online.load(std::memory_order_relaxed)) {
        g.next = (g.next + k + 1) % n;
        add(e, g.name);
        return;
      }
    }
    if (!eligible) return;
    for (std::size_t k = 0; k < n; ++k) {  // nobody online: queue on one (persistent) member
      auto& e = g.members[(g.next + k) % n];
      if (skip_peers && e.target->peer) continue;
      g.next = (g.next + k + 1) % n;
      add(e, g.name);
      return;
    }
  }
  void add_all(node& m) {
    for (auto& e : m.subscribers) add(e, {});
    for (auto& g : m.groups) pick(g);
  }
};

void router::match(std::string_view topic, std::vector<route_entry>& out, std::vector<std::string_view>* groups,
                   bool skip_peers) {
  split_levels(topic, levels_);
  match_state st{levels_, out, groups, skip_peers};
  match_level(*root_, 0, st);
}

void router::match_level(node& n, std::size_t i, match_state& st) {
  const auto& levels = st.levels;
  // `$` topics are not matched by a wildcard in the first level [MQTT-4.7.2-1].
  bool wildcards_ok = !(i == 0 && !levels[0].empty() && levels[0][0] == '$');
  if (wildcards_ok) {
    if (auto it = n.children.find("#"); it != n.children.end()) st.add_all(*it->second);
  }
  if (i == levels.size()) {
    st.add_all(n);
    return;
  }
  if (auto it = n.children.find(levels[i]); it != n.children.end()) match_level(*it->second, i + 1, st);
  if (wildcards_ok) {
    if (auto it = n.children.find("+"); it != n.children.end()) match_level(*it->second, i + 1, st);
  }
}

}  // namespace fleetcore::broker
