const { run, runMany } = require('../src/run');

test('captures the output and exit code of a child process', async () => {
  const result = await run('sh', ['-c', 'echo out; echo err >&2; exit 3']);
  expect(result).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n' });
});

test('runs several node processes at once', async () => {
  const outputs = await runMany(3, 'console.log(Number(process.argv[1]) ** 2)');
  expect(outputs).toEqual(['0', '1', '4']);
});
