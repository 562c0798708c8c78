#include <ei.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <exception>

#include "chat/app/app.hpp"
#include "chat/app/options.hpp"

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

}  // namespace

int main(int argc, char** argv) {
  using chat::app::Command;
  try {
    const auto options = chat::app::parse_options(argc, argv);
    if (options.command == Command::kHelp) {
      std::printf("%s", options.help.c_str());
      return 0;
    }
    if (options.command == Command::kGenSecret) return chat::app::run_gen_secret(options);

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
