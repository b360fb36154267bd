#include "provisioning/hook_caller.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <stdexcept>

namespace fleetcore::provisioning {

namespace asio = boost::asio;

hook_caller::hook_caller(hook_settings s)
    : settings_(std::move(s)), work_(io_.get_executor()), tls_(asio::ssl::context::tls_client) {
  tls_.set_default_verify_paths();
  tls_.set_verify_mode(asio::ssl::verify_peer);
  if (!settings_.ca_file.empty()) {
    boost::system::error_code ec;
    tls_.load_verify_file(settings_.ca_file, ec);
    if (ec) throw std::runtime_error("provisioning.hook_ca_file " + settings_.ca_file + ": " + ec.message());
  }
  http_ = std::make_unique<net::http_client>(io_, tls_, 16);
  thread_ = std::thread([this] { io_.run(); });
}

hook_caller::~hook_caller() {
  stop();
  http_.reset();
}

void hook_caller::stop() {
  if (stopped_.exchange(true)) return;
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

std::optional<std::string> hook_caller::url_of(std::string_view target) const {
  if (auto it = settings_.targets.find(target); it != settings_.targets.end()) return it->second;
  if (target.starts_with("https://")) return std::string(target);
  return std::nullopt;
}

void hook_caller::call(std::string url, std::string input, std::function<void(hook_verdict)> done) {
  if (stopped_) return;
  if (pending_.fetch_add(1) >= max_pending) {
    pending_.fetch_sub(1);
    return done(hook_verdict{false, {}, "too many pre-provisioning hook calls waiting: try again later"});
  }
  asio::post(io_, [this, url = std::move(url), input = std::move(input), done = std::move(done)]() mutable {
    // One verdict: the answer or the deadline, whichever comes first.
    struct state {
      std::function<void(hook_verdict)> done;
      asio::steady_timer deadline;
      bool decided = false;
    };
    auto st = std::make_shared<state>(state{std::move(done), asio::steady_timer(io_, settings_.timeout), false});
    // The request is not sent if it still waits for a connection when the verdict is given.
    auto given = std::make_shared<bool>(false);
    st->deadline.async_wait([this, st, given, ms = settings_.timeout.count()](boost::system::error_code ec) {
      if (ec || st->decided) return;
      st->decided = *given = true;
      pending_.fetch_sub(1);
      st->done(hook_verdict{false, {}, "the pre-provisioning hook did not answer within " + std::to_string(ms) + " ms"});
    });
    net::http_request req{std::move(url), {{"content-type", "application/json"}}, std::move(input), given};
    http_->post(std::move(req), settings_.timeout, [this, st, given](net::http_outcome o) {
      if (st->decided) return;
      st->decided = *given = true;
      pending_.fetch_sub(1);
      st->deadline.cancel();
      st->done(read_hook_answer(o));
    });
  });
}

}  // namespace fleetcore::provisioning
