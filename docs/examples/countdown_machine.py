"""
The countdown machine as a tessia-mesh machine: a class with a static run(task) and validate(task),
run by the runner's tessia host. Parameters: {"from": seconds, "message": text}.

    machines:
      countdown:
        tessia:
          class: countdown_machine:CountdownMachine
          pythonPath: [/path/to/this/directory]
"""
import json
import logging
import time

LOGGER = logging.getLogger('countdown')


class CountdownMachine:
    """Counts down, one journal entry a second, and leaves result.json in its working directory."""

    @staticmethod
    def validate(task):
        """Raises on bad parameters: the request is refused (400) with the exception's message."""
        parameters = task.parameters
        if not isinstance(parameters, dict):
            raise ValueError('parameters must be an object: {"from": seconds, "message": text}')
        unknown = set(parameters) - {'from', 'message'}
        if unknown:
            raise ValueError(f'unknown parameters: {", ".join(sorted(unknown))}')
        seconds = parameters.get('from')
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= 3600:
            raise ValueError('"from" must be a whole number of seconds from 1 to 3600')
        message = parameters.get('message', 'liftoff')
        if not isinstance(message, str) or len(message) > 200:
            raise ValueError('"message" must be text of at most 200 characters')

    @staticmethod
    def run(task):
        """The task: a stop raises in here, so the finally block is the machine's cleanup."""
        CountdownMachine.validate(task)
        left = task.parameters['from']
        completed = False
        LOGGER.info('counting down from %d', left)
        try:
            while left > 0:
                LOGGER.info('T-minus %d', left)
                time.sleep(1)
                left -= 1
            print(task.parameters.get('message', 'liftoff'))
            completed = True
        finally:
            if not completed:
                LOGGER.warning('stopped with %d seconds left: cleaning up', left)
            with open('result.json', 'w', encoding='utf-8') as result:
                json.dump({'completed': completed, 'left': left}, result)
                result.write('\n')
