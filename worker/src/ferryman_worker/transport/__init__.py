"""JetStream: timers, pull loops over durable consumers, execution slots."""
