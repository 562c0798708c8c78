import Config

# One line per log event. The console backend's default format starts every
# event with an empty line, which shows up as blank entries in a dyno's log.
config :logger, :console, format: "$time $metadata[$level] $message\n"
