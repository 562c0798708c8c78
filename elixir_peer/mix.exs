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
      deps: []
    ]
  end

  def application do
    [
      mod: {Chat.Application, []},
      extra_applications: [:logger, :crypto]
    ]
  end
end
