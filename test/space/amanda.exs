# Amanda at an iex prompt in a one-off dyno: finds moebi.1 through the
# space's DNS and sends it a message with the seed Chat module. The :chat
# application runs here too (moebi's "chicken?" comes back as a task on this
# node's Chat.TaskSupervisor).
{:ok, _} = Application.ensure_all_started(:chat)

app = System.fetch_env!("HEROKU_DNS_APP_NAME")
dns = "1.moebi.#{app}"

ip =
  case :inet.getaddrs(String.to_charlist(dns), :inet) do
    {:ok, [ip]} ->
      ip

    other ->
      IO.puts("amanda: #{dns} resolved to #{inspect(other)}, expected one address")
      System.halt(1)
  end

moebi = :"moebi@#{:inet.ntoa(ip)}"
IO.puts("amanda: #{dns} -> #{:inet.ntoa(ip)}")
IO.puts(~s|iex(#{node()})> Chat.send_message(:"#{moebi}", "Hello from Amanda!")|)
IO.inspect(Chat.send_message(moebi, "Hello from Amanda!"))
