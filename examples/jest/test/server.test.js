const { startServer } = require('../src/server');

let server;
beforeAll(async () => {
  server = await startServer('hello');
});
afterAll(() => server.stop());

test('a server in a child process answers', async () => {
  const response = await fetch(`${server.url}/jest`);
  expect(await response.text()).toBe('hello, jest');
});
