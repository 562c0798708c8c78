defmodule Chat.MixProject do
  use Mix.Project

  # No dependencies on purpose: the project has to build without Hex or
  # network access (`mix compile` only needs Elixir/OTP itself).
  def project do
    [
      app: :chat,
      version: "0.1.0",
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      deps: [],
      # TLS distribution (-proto_dist inet_tls) loads ssl's modules into a node that does not
      # run the ssl application. Since Elixir 1.15, `mix run` drops the code paths of
      # applications the project does not list; keep them (measured: OTP 27 / Elixir 1.18,
      # every TLS handshake fails without this). Earlier Elixirs ignore the option.
      prune_code_paths: false
    ]
  end

  def application do
    [
      mod: {Chat.Application, []},
      extra_applications: [:logger, :crypto]
    ]
  end
end
