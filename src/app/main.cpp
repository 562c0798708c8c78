#include <ei.h>
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
