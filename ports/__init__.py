"""The interfaces the domain needs, as `typing.Protocol`s. Adapters implement them."""
