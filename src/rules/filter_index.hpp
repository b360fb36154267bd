#pragma once
// The FROM filters of the enabled rules, built once per rule change and then only read (by every
// worker at once, without a lock): filters without wildcards in a hash table of whole topics, the others
// in a trie. A message costs one lookup of its topic and one walk of its levels, however many rules
// there are.
#include <boost/unordered/unordered_flat_map.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcore::rules {

class filter_index {
 public:
  /// Adds `filter` (a valid MQTT topic filter) for value `id`.
  void add(std::string_view filter, std::uint32_t id) {
    if (filter.find_first_of("+#") == std::string_view::npos) {
      exact_[std::string(filter)].push_back(id);
      return;
    }
    node* n = &root_;
    for (std::size_t start = 0;;) {
      auto end = filter.find('/', start);
      auto level = filter.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
      if (level == "#") {
        n->hash_ids.push_back(id);
        return;
      }
      auto& child = level == "+" ? n->plus : n->children[std::string(level)];
      if (!child) child = std::make_unique<node>();
      n = child.get();
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
    n->ids.push_back(id);
  }

  /// Calls `fn(id)` for every filter that matches `topic` (MQTT rules: wildcards at the first level
  /// do not match a topic starting with `$`). Each id at most once per filter added.
  template <class Fn>
  void match(std::string_view topic, Fn&& fn) const {
    if (!exact_.empty())
      if (auto it = exact_.find(topic); it != exact_.end())
        for (auto id : it->second) fn(id);
    if (!trie_empty()) match_from(root_, topic, 0, !topic.empty() && topic[0] == '$', fn);
  }

  bool empty() const noexcept { return exact_.empty() && trie_empty(); }

 private:
  bool trie_empty() const noexcept { return root_.children.empty() && !root_.plus && root_.hash_ids.empty(); }

  struct level_hash {  // FNV-1a: levels and topics are short (the maps mix the result further)
    using is_transparent = void;
    std::size_t operator()(std::string_view level) const noexcept {
      std::uint64_t h = 14695981039346656037ull;
      for (unsigned char c : level) h = (h ^ c) * 1099511628211ull;
      return static_cast<std::size_t>(h);
    }
  };
  struct node {
    boost::unordered_flat_map<std::string, std::unique_ptr<node>, level_hash, std::equal_to<>> children;
    std::unique_ptr<node> plus;
    std::vector<std::uint32_t> ids;       // filters ending here
    std::vector<std::uint32_t> hash_ids;  // filters ending in "/#" below here (or "#")
  };

  template <class Fn>
  static void match_from(const node& n, std::string_view topic, std::size_t start, bool dollar, Fn& fn) {
    // "a/#" also matches "a" itself: the hash ids of this node match whatever remains.
    if (!dollar)
      for (auto id : n.hash_ids) fn(id);
    auto end = topic.find('/', start);
    auto level = topic.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    auto visit = [&](const node& child) {
      if (end == std::string_view::npos) {
        for (auto id : child.ids) fn(id);
        for (auto id : child.hash_ids) fn(id);  // "a/#" matches "a" (the parent level)
      } else {
        match_from(child, topic, end + 1, false, fn);
      }
    };
    if (auto it = n.children.find(level); it != n.children.end()) visit(*it->second);
    if (n.plus && !dollar) visit(*n.plus);
  }

  boost::unordered_flat_map<std::string, std::vector<std::uint32_t>, level_hash, std::equal_to<>> exact_;
  node root_;
};

}  // namespace fleetcore::rules
