#include <ei.h>
#include <malloc.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>

#include "chat/app/app.hpp"
#include "chat/app/options.hpp"

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
    switch (options.command) {
      case Command::kSend: return chat::app::run_send(options);
      case Command::kPing: return chat::app::run_ping(options);
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
