"""The in-process adapter of the bus port: the bus (adapter.py) over an emulated broker
(broker.py) with the RabbitMQ features the topology uses."""
