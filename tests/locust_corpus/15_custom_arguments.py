from locust import HttpUser, constant, events, task


@events.init_command_line_parser.add_listener
def _arguments(parser):
    parser.add_argument("--item-path", type=str, default="/custom/default", help="path to request")


class Configurable(HttpUser):
    wait_time = constant(0.05)

    @task
    def call(self):
        self.client.get(self.environment.parsed_options.item_path)
