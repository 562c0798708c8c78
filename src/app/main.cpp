#include <ei.h>
#include <limits.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

#include "chat/app/app.hpp"
#include "chat/app/options.hpp"
#include "chat/app/tls_setup.hpp"
#include "chat/tls/engine.hpp"
#ifdef CHAT_NODE_TLS
#include "chat/tls/openssl.hpp"
#endif

namespace {

void widen_stdout_pipe() {
  struct stat st {};
  if (fstat(STDOUT_FILENO, &st) != 0 || !S_ISFIFO(st.st_mode)) return;
  if (std::FILE* f = std::fopen("/proc/sys/fs/pipe-max-size", "r")) {
    int size = 0;
    if (std::fscanf(f, "%d", &size) == 1 && size > 0) fcntl(STDOUT_FILENO, F_SETPIPE_SZ, std::min(size, 1 << 20));
    std::fclose(f);
  }
}

// chat-node has no TLS implementation of its own (chat/tls/engine.hpp says why): asked for
// TLS, it becomes chat-node-tls, the same program with OpenSSL, installed beside it. Same
// process, same arguments and environment.
void become_tls_node(char** argv) {
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) throw std::runtime_error(std::string("cannot find this program: ") + std::strerror(errno));
  std::string path(self, static_cast<size_t>(n));
  path = path.substr(0, path.rfind('/') + 1) + "chat-node-tls";
  execv(path.c_str(), argv);
  throw std::runtime_error("TLS distribution runs in " + path + ", which cannot be started (" + std::strerror(errno) +
                           "): install chat-node-tls beside chat-node");
}

}  // namespace

int main(int argc, char** argv) {
  using chat::app::Command;
  try {
#ifdef CHAT_NODE_TLS
    chat::tls::install(&chat::tls::openssl_engine());
#endif
    const auto options = chat::app::parse_options(argc, argv);
    if (chat::tls::engine() == nullptr && chat::app::wants_tls(options)) become_tls_node(argv);
    if (options.command == Command::kHelp) {
      std::printf("%s", options.help.c_str());
      return 0;
    }
    if (options.command == Command::kGenSecret) return chat::app::run_gen_secret(options);
    if (options.command == Command::kTlsCa) return chat::app::run_tls_ca(options);
    if (options.command == Command::kTlsCert) return chat::app::run_tls_cert(options);

    // stdout carries the chat lines; logs go to stderr.
    spdlog::set_default_logger(spdlog::stderr_color_mt("chat-node"));
    spdlog::set_level(spdlog::level::from_str(options.log_level));
    ei_init();
    // Large message buffers: glibc's default would map and unmap every buffer of a 1 MB message
    // (page faults were most of the time of a 1 MB stream), and its dynamic threshold parks
    // larger ones in the heap for good. A fixed 32 MB threshold keeps message-sized buffers in
    // a heap that is trimmed past 64 MB, while anything larger is mapped and given back as soon
    // as the message is gone.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    // No fastbins: freed small blocks are merged as they are freed, not all at once when a
    // large block is next allocated or freed. After a peer with a million monitors left, that
    // one merge walked millions of blocks, stalling the loop for a third of a second at a time.
    // The hot small sizes still come from the per-thread cache.
    mallopt(M_MXFAST, 0);
    // Chat lines are the product, and stdout is usually a pipe (Heroku's log router, a shell
    // pipeline). At the default 64 KB a 1 MB message is sixteen rounds of wake-the-reader;
    // the largest pipe an unprivileged process may ask for takes it in one write.
    widen_stdout_pipe();
    // A peer or a log reader that goes away mid-write must cost that write (EPIPE), not the node.
    std::signal(SIGPIPE, SIG_IGN);
    switch (options.command) {
      case Command::kSend: return chat::app::run_send(options);
      case Command::kPing: return chat::app::run_ping(options);
      case Command::kBroadcast: return chat::app::run_broadcast(options);
      case Command::kBlast: return chat::app::run_blast(options);
      default: {
        chat::app::App app(options);
        return app.run();
      }
    }
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "chat-node: %s\n", e.what());
    return 64;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chat-node: %s\n", e.what());
    return 1;
  }
}
