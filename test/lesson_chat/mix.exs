defmodule LessonChat.MixProject do
  use Mix.Project

  # No dependencies: must build offline.
  def project do
    [
      app: :lesson_chat,
      version: "0.1.0",
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      deps: []
    ]
  end

  def application do
    [
      mod: {Chat.Application, []},
      extra_applications: [:logger]
    ]
  end
end
