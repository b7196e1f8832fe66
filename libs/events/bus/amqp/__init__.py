"""The RabbitMQ adapter of the bus port (aio-pika): the bus (adapter.py), its consumers and
batched acks, the control-stream reader, and the topology declared on the broker."""
