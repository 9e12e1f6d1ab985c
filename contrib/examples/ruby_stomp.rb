#!/usr/bin/ruby
# ruby_stomp.rb: the stomp gem (Debian: ruby-stomp) against `make run`: send to a queue,
# receive it back, acknowledge. STOMPD_PORT / STOMPD_LOGIN / STOMPD_PASSCODE override the
# defaults (61613, no login).
require 'stomp'
require 'timeout'

port = (ENV['STOMPD_PORT'] || '61613').to_i
client = Stomp::Client.new(
  hosts: [{ login: ENV['STOMPD_LOGIN'] || '', passcode: ENV['STOMPD_PASSCODE'] || '',
            host: '127.0.0.1', port: port }],
  connect_headers: { 'accept-version' => '1.2', 'host' => 'localhost' },
  reliable: false
)
got = Queue.new
client.subscribe('/queue/example', ack: 'client-individual', id: '1') do |msg|
  client.ack(msg)
  got << msg.body
end
client.publish('/queue/example', 'hello from ruby')
body = Timeout.timeout(10) { got.pop }
puts "ruby got: #{body}"
client.close
